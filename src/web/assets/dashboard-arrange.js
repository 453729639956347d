// Dashboard arranging: in edit mode, drag a widget's title bar to move it and its corner to resize it (pointer
// events: mouse, touch, pen); others it would cover move down. dashboard.js wires it with its board, and saves.
'use strict';

(() => {
  const COLS = 12;
  const GAP = 12;

  const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

  /** board: { grid, widgets, phone, specs(), place(w), placeAll(), save(), editing() }; returns { settle }. */
  window.iotcDashboardArrange = (board) => {
    const { grid, widgets, phone } = board;

    /** The moved widget keeps its place; any it now covers moves down until nothing overlaps. */
    function settle(moved) {
      const placed = [moved.spec];
      const others = [...widgets.values()].filter((w) => w !== moved).sort((a, b) => a.spec.y - b.spec.y || a.spec.x - b.spec.x);
      for (const w of others) {
        while (placed.some((p) => overlaps(p, w.spec))) w.spec.y++;
        placed.push(w.spec);
      }
      board.placeAll();
    }

    /** On a phone: the dragged widget takes the place of the widget it was dropped on (which moves down), or goes last. */
    function drop(w, clientY) {
      const others = board.specs().filter((s) => s !== w.spec);
      const target = others.find((s) => {
        const r = widgets.get(s.id).el.getBoundingClientRect();
        return clientY < r.top + r.height / 2;
      });
      if (target) {
        w.spec.y = target.y;
        w.spec.x = Math.min(target.x, COLS - w.spec.w);
      } else {
        w.spec.y = Math.max(0, ...others.map((s) => s.y + s.h));
        w.spec.x = 0;
      }
    }

    function cellSize() {
      const rect = grid.getBoundingClientRect();
      const row = parseFloat(getComputedStyle(grid).gridAutoRows) || 90;
      return { col: (rect.width + GAP) / COLS, row: row + GAP };
    }

    grid.addEventListener('pointerdown', (event) => {
      if (!board.editing() || event.button > 0) return;
      const handle = event.target.closest('[data-drag-handle], [data-resize-handle]');
      if (!handle || event.target.closest('.widget-remove, [data-widget-edit]')) return;
      const el = handle.closest('[data-widget]');
      const w = widgets.get(el.dataset.widget);
      if (!w) return;
      event.preventDefault();
      const resizing = handle.hasAttribute('data-resize-handle');
      const start = { px: event.clientX, py: event.clientY, x: w.spec.x, y: w.spec.y, w: w.spec.w, h: w.spec.h };
      const cell = cellSize();
      el.classList.add('dragging');
      handle.setPointerCapture(event.pointerId);
      let lastY = event.clientY;
      const move = (e) => {
        lastY = e.clientY;
        const dx = Math.round((e.clientX - start.px) / cell.col);
        const dy = Math.round((e.clientY - start.py) / cell.row);
        if (phone.matches && !resizing) {
          el.style.transform = 'translateY(' + (e.clientY - start.py) + 'px)';
          return;
        }
        if (phone.matches) {
          w.spec.h = Math.max(1, Math.min(12, start.h + dy));
        } else if (resizing) {
          w.spec.w = Math.max(1, Math.min(COLS - w.spec.x, start.w + dx));
          w.spec.h = Math.max(1, Math.min(12, start.h + dy));
        } else {
          w.spec.x = Math.max(0, Math.min(COLS - w.spec.w, start.x + dx));
          w.spec.y = Math.max(0, start.y + dy);
        }
        board.place(w);
      };
      const up = () => {
        handle.removeEventListener('pointermove', move);
        handle.removeEventListener('pointerup', up);
        handle.removeEventListener('pointercancel', up);
        el.classList.remove('dragging');
        el.style.transform = '';
        if (phone.matches && !resizing) drop(w, lastY);
        settle(w);
        if (w.spec.x !== start.x || w.spec.y !== start.y || w.spec.w !== start.w || w.spec.h !== start.h) board.save();
      };
      handle.addEventListener('pointermove', move);
      handle.addEventListener('pointerup', up);
      handle.addEventListener('pointercancel', up);
    });

    return { settle };
  };
})();

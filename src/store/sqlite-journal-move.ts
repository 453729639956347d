import { slicesByKey } from './sqlite-chunks.js';
import type { JournalRow } from './sqlite-chunks.js';

/** How a move is taken in steps: journal rows read per step, keys moved per transaction. */
export interface MoveSteps {
  readRows: number;
  sliceKeys: number;
}

/** What a move in steps asks of the readings it moves. */
export interface JournalSide {
  /** Up to `n` journal rows after id `after`, in id order. */
  read(after: number, n: number): JournalRow[];
  /** Moves the rows of a slice still in the journal, in one transaction. */
  moveSlice(rows: JournalRow[]): void;
  /** A read found the journal's end: it held `rows` rows then. */
  reachedEnd(rows: number): void;
}

/**
 * A move of up to `budget` journal rows taken in steps, each short enough not to hold the event loop: at
 * 10 000 readings/s from 1 000 devices, a move in one transaction paused the loop for 10–20 ms. A step reads the
 * next rows, or moves one slice of them. Each key's rows read together stay in one slice, so they make the
 * chunks a move in one transaction makes.
 */
export class JournalMove {
  private after = 0;
  private slices: JournalRow[][] = [];
  private atEnd = false;

  constructor(private budget: number, private readonly journal: JournalSide) {}

  /** One step; returns whether steps are left. */
  step(steps: MoveSteps): boolean {
    const slice = this.slices.shift();
    if (slice) {
      this.journal.moveSlice(slice);
      return this.slices.length > 0 || (!this.atEnd && this.budget > 0);
    }
    if (this.atEnd || this.budget <= 0) return false;
    const asked = Math.min(this.budget, steps.readRows);
    const rows = this.journal.read(this.after, asked);
    if (rows.length < asked) {
      this.atEnd = true;
      this.journal.reachedEnd(rows.length);
    }
    if (rows.length === 0) return false;
    this.budget -= rows.length;
    this.after = rows[rows.length - 1][9];
    this.slices = slicesByKey(rows, steps.sliceKeys);
    return true;
  }
}

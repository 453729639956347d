// Device page "Call a method" form: a call to the device and its answer, or, for a persistent call, its state as it
// changes later ($call frames on the live connection: queued, sent, answered, expired). device.js wires it.
'use strict';

(() => {
  /** root: the device page; request(body, timeoutMs): a request on the live connection. Returns { onCallState(update) }. */
  window.iotcDeviceCall = (root, request) => {
    const callForm = root.querySelector('[data-call-form]');
    const callStatus = root.querySelector('[data-call-status]');
    const callResult = root.querySelector('[data-call-result]');
    /** The persistent call this page is waiting on: its answer arrives later as a $call frame. */
    let awaitedCall = null;

    function showCall(text, ok, result) {
      callStatus.textContent = text;
      callStatus.className = 'form-status ' + (ok ? 'ok' : 'bad');
      callStatus.dataset.outcome = ok ? 'ok' : 'bad';
      callResult.hidden = result === undefined;
      callResult.textContent = result === undefined ? '' : JSON.stringify(result, null, 2);
    }

    function callFailure(reply, seconds) {
      switch (reply.code) {
        case 'E_TIMEOUT':
          return 'No answer: the device did not answer within ' + seconds + ' s.';
        case 'E_OFFLINE':
          return 'The device is offline. Tick "wait for it" to deliver the call when it connects.';
        case 'E_DEVICE':
          return 'The device answered with an error: ' + reply.error;
        default:
          return reply.error;
      }
    }

    function onCallState(update) {
      if (!update || update.call !== awaitedCall) return;
      if (update.state === 'sent') return showCall('Delivered to the device; waiting for its answer…', true);
      awaitedCall = null;
      if (update.state === 'expired') return showCall('Expired: the device did not answer in time.', false);
      if (update.error !== undefined) return showCall('The device answered with an error: ' + update.error, false);
      showCall('Answered:', true, update.result);
    }

    if (callForm) {
      callForm.addEventListener('submit', async (event) => {
        event.preventDefault();
        const method = callForm.elements.method.value.trim();
        const paramsText = callForm.elements.params.value.trim();
        const seconds = Number(callForm.elements.timeout.value || 10);
        const persistent = callForm.elements.persistent.checked;
        if (!method) return showCall('Enter a method name, e.g. reboot.', false);
        let params = null;
        if (paramsText) {
          try {
            params = JSON.parse(paramsText);
          } catch {
            return showCall('Params must be JSON, e.g. {"delay":5}, 42 or "text".', false);
          }
        }
        const max = persistent ? 7 * 86400 : 60;
        if (!(seconds >= 0.1 && seconds <= max)) return showCall('The timeout is 0.1 to ' + (persistent ? '604800 (7 days)' : '60') + ' seconds.', false);
        const button = callForm.querySelector('button[type=submit]');
        button.disabled = true;
        showCall(persistent ? 'Sending…' : 'Calling ' + method + '… (up to ' + seconds + ' s)', true);
        try {
          const timeout = Math.round(seconds * 1000);
          const reply = await request({ method: 'call', device_method: method, params, timeout, persistent }, persistent ? 10000 : timeout + 10000);
          if (!reply.ok) return showCall(callFailure(reply, seconds), false);
          if (reply.state === 'queued' || reply.state === 'sent') {
            awaitedCall = reply.call;
            return showCall(reply.state === 'queued' ? 'Queued: the call is delivered when the device connects; its answer shows here.' : 'Delivered to the device; waiting for its answer…', true);
          }
          showCall('Answered:', true, reply.result);
        } catch (err) {
          showCall(err.message, false);
        } finally {
          button.disabled = false;
        }
      });
    }

    return { onCallState };
  };
})();

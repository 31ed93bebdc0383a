// heratio-keys web interface: the copy button on the "new key" page.
// Served as a file (the Content-Security-Policy allows no inline script).
'use strict';

document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('[data-copy-target]').forEach(function (button) {
    button.addEventListener('click', function () {
      var field = document.getElementById(button.getAttribute('data-copy-target'));
      var status = document.getElementById('copy-status');
      if (!field) { return; }
      var done = function (ok) {
        if (status) {
          status.textContent = ok ? 'Copied to the clipboard.' : 'Copy failed: select the text and copy it by hand.';
          status.className = ok ? 'small text-success mb-3' : 'small text-danger mb-3';
        }
        if (ok) { button.textContent = 'Copied'; }
      };
      var fallback = function () {
        field.focus();
        field.select();
        var ok = false;
        try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
        done(ok);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () { done(true); }, fallback);
      } else {
        fallback();
      }
    });
  });
  // Select the whole key when the field is focused, for manual copying.
  document.querySelectorAll('[readonly].font-monospace').forEach(function (field) {
    field.addEventListener('focus', function () { field.select(); });
  });
});

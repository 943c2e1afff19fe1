// The storefront's own script: after a refused form, move the keyboard to the first field in error.
document.addEventListener("DOMContentLoaded", function () {
  var bad = document.querySelector("[aria-invalid=true]");
  if (bad) bad.focus();
});

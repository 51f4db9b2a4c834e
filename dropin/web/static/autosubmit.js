// One click from an email: the RSVP page confirms itself when a person's browser opens it.
// Link scanners that fetch the page without running scripts change nothing.
const form = document.querySelector("form[data-autosubmit]");
if (form && !sessionStorage.getItem(form.action)) {
  sessionStorage.setItem(form.action, "1");
  form.submit();
}

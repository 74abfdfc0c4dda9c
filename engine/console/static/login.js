// Say so when the last attempt failed (the server redirects here with ?failed=1), and go on
// to the page that was asked for (?next=, which the server checks is one of its own).
const query = new URLSearchParams(location.search);
if (query.has("failed")) {
  document.getElementById("failed").hidden = false;
}
if (query.get("next")) {
  document.getElementById("next").value = query.get("next");
}

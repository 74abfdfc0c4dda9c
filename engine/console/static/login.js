// Say so when the last attempt failed (the server redirects here with ?failed=1).
if (new URLSearchParams(location.search).has("failed")) {
  document.getElementById("failed").hidden = false;
}

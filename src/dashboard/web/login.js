// login.js - shows the login page's error after a refused token
// (POST /login answers 303 to /?login=failed).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  if (new URLSearchParams(location.search).get("login") === "failed") {
    document.getElementById("login-error").hidden = false;
    document.getElementById("token").setAttribute("aria-invalid", "true");
  }
});

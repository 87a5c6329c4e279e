// Starts Roundtable. It lives in its own file, not inline in index.html, so the
// page works under a strict Content Security Policy.
//
// Two apps share this page: the phone's small one (joining, the lobby, the
// safety scale) and the full one (the board, the chair's tools, the room view).
// The path decides which, so a phone never downloads the full app to vote.
const phone =
  /^\/(join|lobby)\/?$/.test(location.pathname) ||
  /^\/conference\/[0-9a-fA-F-]{1,64}\/score\/?$/.test(location.pathname);
const app = phone ? "roundtable_phone" : "roundtable_client";

// Fetch the module and its JS glue at the same time.
const wasm = fetch(`/pkg/${app}_bg.wasm`);

import(`/pkg/${app}.js`)
  .then(({ default: init }) => init({ module_or_path: wasm }))
  .catch((error) => {
    console.error("Roundtable could not start:", error);
    document.getElementById("loading")?.remove();
    const message = document.createElement("p");
    message.setAttribute("role", "alert");
    message.className = "problem";
    message.textContent =
      "Roundtable could not start in this browser. Please reload the page. " +
      "If that does not help, try an up-to-date version of Chrome, Edge, Firefox or Safari.";
    const main = document.createElement("main");
    main.append(message);
    document.body.append(main);
  });

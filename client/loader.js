// Starts the Roundtable app. It lives in its own file, not inline in
// index.html, so the page works under a strict Content Security Policy.
import init from "/pkg/roundtable_client.js";

init({ module_or_path: "/pkg/roundtable_client_bg.wasm" }).catch((error) => {
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

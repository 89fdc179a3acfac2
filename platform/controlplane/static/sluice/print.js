// A button marked data-print prints the page (a file, not inline: the Content-Security-Policy
// allows scripts from this site only).
document.querySelectorAll("[data-print]").forEach((button) => {
  button.addEventListener("click", () => window.print());
});

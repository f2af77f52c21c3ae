// edgecd console: apply the saved theme before first paint (a classic script, not a module, so it runs before the page renders).
(function () {
  var t = localStorage.getItem("edgecd.theme");
  if (t === "dark" || t === "light") document.documentElement.dataset.theme = t;
})();

// livehub embed: put live comments on any page of a site listed in the server's
// LIVEHUB_CORS_ORIGINS. No build step, no dependencies:
//
//   <div id="chat" style="height: 480px"></div>
//   <script src="https://livehub.example/assets/embed.js"></script>
//   <script>
//     Livehub.mount(document.getElementById("chat"), {
//       video: "launch",
//       token: function () { return fetch("/my/livehub-token").then(r => r.text()); },
//       mode: "inline",  // or "iframe"
//     });
//   </script>
//
// or declaratively: <div data-livehub-video="launch" data-livehub-token="myTokenFn"
// data-livehub-mode="iframe"></div> (myTokenFn: a global function's name).
//
// The token function returns the signed-in person's token (a string, a Promise of
// one, or null: read-only); it is asked again when livehub answers 401 (expired).
// inline: the chat runs in this page, in a shadow root (its style cannot leak either
//   way), and talks to livehub with CORS.
// iframe: the chat is livehub's viewer page in an iframe; the token is handed to it
//   by postMessage, to livehub's origin only, and the page takes it only from an
//   allowed origin.
(function () {
  "use strict";

  var script = document.currentScript;
  var BASE = new URL(script ? script.src : "/", location.href).origin; // livehub's origin
  var viewerLoaded = null;

  function loadViewer() {
    if (window.LivehubViewer) return Promise.resolve();
    if (!viewerLoaded) {
      viewerLoaded = new Promise(function (resolve, reject) {
        var s = document.createElement("script");
        s.src = BASE + "/assets/viewer.js";
        s.async = true;
        s.onload = function () { resolve(); };
        s.onerror = function () { viewerLoaded = null; reject(new Error("livehub: cannot load viewer.js")); };
        document.head.appendChild(s);
      });
    }
    return viewerLoaded;
  }

  function tokenGetter(options, element) {
    if (typeof options.token === "function") return options.token;
    var name = element.dataset.livehubToken;
    if (name && typeof window[name] === "function") return window[name];
    return function () { return null; };
  }

  function mountInline(element, video, getToken) {
    var shadow = element.shadowRoot || element.attachShadow({ mode: "open" });
    var style = document.createElement("link");
    style.rel = "stylesheet";
    style.href = BASE + "/assets/viewer.css";
    var root = document.createElement("div");
    root.className = "lh";
    shadow.append(style, root);
    return loadViewer().then(function () {
      window.LivehubViewer.mount(root, { base: BASE, video: video, getToken: getToken });
      return root;
    });
  }

  function mountFrame(element, video, getToken) {
    var frame = document.createElement("iframe");
    frame.src = BASE + "/videos/" + encodeURIComponent(video);
    frame.title = "Live comments";
    frame.style.cssText = "border: 0; width: 100%; height: 100%; display: block;";
    window.addEventListener("message", function (event) {
      if (event.source !== frame.contentWindow || event.origin !== BASE) return;
      var type = event.data && event.data.type;
      if (type !== "livehub:ready" && type !== "livehub:token-expired") return;
      Promise.resolve().then(getToken).then(function (token) {
        frame.contentWindow.postMessage(
          { type: "livehub:token", token: typeof token === "string" ? token : null }, BASE);
      }, function () {
        frame.contentWindow.postMessage({ type: "livehub:token", token: null }, BASE);
      });
    });
    element.appendChild(frame);
    return Promise.resolve(frame);
  }

  function mount(element, options) {
    options = options || {};
    var video = options.video || element.dataset.livehubVideo;
    if (!video) throw new Error("livehub: mount needs a video id");
    var mode = options.mode || element.dataset.livehubMode || "inline";
    var getToken = tokenGetter(options, element);
    return mode === "iframe" ? mountFrame(element, video, getToken)
      : mountInline(element, video, getToken);
  }

  window.Livehub = { mount: mount, origin: BASE };

  function auto() {
    document.querySelectorAll("[data-livehub-video]").forEach(function (element) {
      if (!element.dataset.livehubMounted) {
        element.dataset.livehubMounted = "1";
        mount(element);
      }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", auto);
  else auto();
})();

// livehub viewer: newest comments from the history API, then live ones over
// EventSource, older pages on scrolling up, and a box to post. No dependencies.
//
// LivehubViewer.mount(root, options) builds the chat inside ``root``; the viewer page
// (/videos/<id>) mounts it on #livehub, /assets/embed.js on another site's element.
// Options: base (livehub's origin, "" for this one), video, maxChars, getToken (a
// function returning a token, a Promise of one, or null: the embedding site signs
// people in), embedOrigins (sites allowed to hand this page a token by postMessage
// when it runs in their iframe).
//
// Token on the viewer page (to post), first found wins: ?token=<JWT> in the page URL
// (removed from the address bar once read), window.LIVEHUB_TOKEN set by an embedding
// page before this script runs, a token posted by the parent page of an iframe from an
// allowed origin, or a dev token for a display name from POST /dev/token (only when
// the server runs with LIVEHUB_DEV_TOKENS=1, as scripts/run does). All user text is
// put in the page with textContent, never as HTML.
//
// Moderation: a token whose "roles" claim holds "moderator" or "moderator:<video>"
// gets a moderator bar (close/open the chat) and pin / delete / ban controls on each
// comment; an author may delete their own. The pinned comment sits above the list,
// and deletions, pins and settings arrive live on the stream.
(function () {
  "use strict";

  var PAGE_SIZE = 50; // comments per history request
  var MAX_SHOWN = 1000; // live comments beyond this drop the oldest (scroll up reloads them)
  var NEAR_TOP_PX = 200; // start loading older comments this close to the top
  var AT_BOTTOM_PX = 48; // "at the bottom" tolerance: live comments keep the view pinned
  var OFFLINE_AFTER_MS = 8000; // reconnecting this long without success shows "offline"
  var DEV_KEY = "livehub.devtoken";
  var BAN_CHOICES = [["300", "5 minutes"], ["3600", "1 hour"], ["86400", "1 day"],
    ["permanent", "for good"]];

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function withAttrs(node, attrs) {
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  // The chat's elements, built node by node (never from an HTML string).
  function build(root, video) {
    var head = el("header", "lh-head");
    var title = el("h1", "lh-title", "Live comments ");
    title.appendChild(el("span", "lh-video", video));
    head.append(
      title,
      withAttrs(el("span", "lh-viewers"), { id: "lh-viewers", hidden: "" }),
      withAttrs(el("span", "lh-state", "Connecting…"),
        { id: "lh-state", "data-state": "connecting", role: "status" }));
    var modbar = withAttrs(el("div", "lh-modbar"), { id: "lh-modbar", hidden: "" });
    modbar.append(el("span", "", "Moderating"),
      withAttrs(el("button", "lh-link", "Close chat"), { type: "button", id: "lh-toggle-chat" }),
      withAttrs(el("span", "lh-notice"), { id: "lh-notice", role: "status" }));
    var pinned = withAttrs(el("aside", "lh-pinned"),
      { id: "lh-pinned", "aria-label": "Pinned comment", hidden: "" });
    pinned.append(el("span", "lh-pin-label", "📌 Pinned"),
      withAttrs(el("b", "lh-pin-user"), { id: "lh-pin-user" }),
      withAttrs(el("p", "lh-pin-msg"), { id: "lh-pin-msg" }),
      withAttrs(el("button", "lh-link", "Unpin"), { type: "button", id: "lh-unpin", hidden: "" }));
    var scroll = withAttrs(el("div", "lh-scroll"), { id: "lh-scroll" });
    scroll.append(
      withAttrs(el("p", "lh-older", "Loading comments…"), { id: "lh-older" }),
      withAttrs(el("ol", "lh-list"), { id: "lh-list", role: "log", "aria-label": "Comments" }));
    var pillRow = el("div", "lh-pill-row");
    pillRow.appendChild(withAttrs(el("button", "lh-pill"), { type: "button", id: "lh-pill", hidden: "" }));
    var join = withAttrs(el("form", "lh-form"), { id: "lh-join", hidden: "" });
    join.append(
      withAttrs(el("input"), { id: "lh-name", name: "name", maxlength: "64",
        placeholder: "Pick a display name", autocomplete: "nickname",
        "aria-label": "Display name", required: "" }),
      withAttrs(el("button", "", "Join"), { type: "submit", id: "lh-join-button" }));
    var post = withAttrs(el("form", "lh-form"), { id: "lh-post", hidden: "" });
    post.append(
      withAttrs(el("textarea"), { id: "lh-message", name: "message", rows: "2",
        placeholder: "Say something…", "aria-label": "Your comment" }),
      withAttrs(el("button", "", "Send"), { type: "submit", id: "lh-send" }));
    var who = withAttrs(el("span", "", "Commenting as "), { id: "lh-who", hidden: "" });
    who.append(withAttrs(el("b"), { id: "lh-user" }), withAttrs(el("span", "", " · "), { id: "lh-sep" }),
      withAttrs(el("button", "lh-link", "sign out"), { type: "button", id: "lh-signout" }));
    var meta = el("p", "lh-meta");
    meta.append(who, withAttrs(el("span", "lh-count"), { id: "lh-count" }));
    var foot = el("footer", "lh-foot");
    foot.append(
      withAttrs(el("p", "lh-closed", "The chat is closed."), { id: "lh-closed", role: "status", hidden: "" }),
      join, post, meta,
      withAttrs(el("p", "lh-error"), { id: "lh-error", role: "alert", hidden: "" }));
    root.append(head, modbar, pinned, scroll, pillRow, foot);
  }

  function mount(root, options) {
    options = options || {};
    var base = options.base || "";
    var video = String(options.video);
    var maxChars = Number(options.maxChars) || 2000;
    var getToken = typeof options.getToken === "function" ? options.getToken : null;
    var embedOrigins = options.embedOrigins || [];
    var api = base + "/comments/" + encodeURIComponent(video);
    var videoApi = base + "/videos/" + encodeURIComponent(video); // pin, bans, settings
    if (!root.querySelector("#lh-list")) build(root, video);
    function $(id) { return root.querySelector("#" + id); }
    var scroller = $("lh-scroll"), list = $("lh-list"), older = $("lh-older");
    var pill = $("lh-pill"), stateEl = $("lh-state"), viewersEl = $("lh-viewers");
    var errorEl = $("lh-error"), messageEl = $("lh-message"), countEl = $("lh-count");

    var shown = new Map(); // seq -> <li>: what is on the page, to de-duplicate
    var streamSeq = null; // the last seq the stream gave (or the newest loaded): resume there
    var nextCursor = null; // older history starts before this seq; null: nothing older
    var loadingOlder = false;
    var unread = 0;
    var source = null;
    var retryTimer = null, offlineTimer = null, retryDelay = 1000;
    var me = { token: null, user: null, dev: false };
    var mod = { roles: [], closed: false, pinnedSeq: null };

    // ---------- comments on the page ----------
    function hue(text) {
      var h = 0;
      for (var i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) % 360;
      return h;
    }

    function displayName(c) {
      return typeof c.user_name === "string" && c.user_name ? c.user_name : String(c.user_id);
    }

    function render(c) {
      var li = el("li", "lh-c");
      li.dataset.seq = String(c.seq);
      if (me.user !== null && c.user_id === me.user) li.classList.add("lh-mine");
      var user = String(c.user_id);
      var shownName = displayName(c);
      var avatar = el("span", "lh-avatar",
        Array.from(shownName)[0] ? Array.from(shownName)[0].toUpperCase() : "?");
      avatar.style.setProperty("--hue", String(hue(user)));
      avatar.setAttribute("aria-hidden", "true");
      var line = el("div", "lh-line");
      var name = el("span", "lh-user", shownName);
      if (shownName !== user) name.title = user; // the id behind the display name
      line.appendChild(name);
      var when = new Date(c.created_at);
      var time = el("time", "lh-time", isNaN(when) ? "" :
        when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
      time.dateTime = String(c.created_at);
      if (!isNaN(when)) time.title = when.toLocaleString();
      line.appendChild(time);
      li.append(avatar, line, el("p", "lh-msg", String(c.message)));
      modDecorate(li, c);
      return li;
    }

    function valid(c) {
      return c && Number.isInteger(c.seq) && c.seq > 0 && typeof c.message === "string";
    }

    // Put a comment at its place by seq; false when it is already shown.
    function insert(c) {
      if (!valid(c) || shown.has(c.seq)) return false;
      var li = render(c);
      shown.set(c.seq, li);
      var before = list.lastElementChild; // live comments land last: scan from the end
      while (before && Number(before.dataset.seq) > c.seq) before = before.previousElementSibling;
      list.insertBefore(li, before ? before.nextSibling : list.firstChild);
      return true;
    }

    function atBottom() {
      return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < AT_BOTTOM_PX;
    }
    function toBottom() {
      scroller.scrollTop = scroller.scrollHeight;
      unread = 0;
      pill.hidden = true;
    }

    function showLive(c) {
      var pinned = atBottom();
      if (!insert(c)) return;
      if (pinned) {
        trim();
        toBottom();
      } else {
        unread += 1;
        pill.textContent = unread === 1 ? "1 new comment ↓" : unread + " new comments ↓";
        pill.hidden = false;
      }
    }

    // A long-open page keeps at most MAX_SHOWN comments; the dropped ones can be reloaded.
    function trim() {
      while (list.children.length > MAX_SHOWN) {
        var first = list.firstElementChild;
        shown.delete(Number(first.dataset.seq));
        first.remove();
        nextCursor = Number(list.firstElementChild.dataset.seq);
      }
      olderLabel();
    }

    function olderLabel(text) {
      if (text) older.textContent = text;
      else if (nextCursor !== null) older.textContent = "Scroll up for older comments";
      else if (shown.size === 0) older.textContent = "No comments yet. Say something!";
      else older.textContent = "This is the beginning of the comments.";
    }

    // ---------- history ----------
    function fetchPage(cursor) {
      var url = api + "?pagesize=" + PAGE_SIZE + (cursor === null ? "" : "&cursor=" + cursor);
      return fetch(url, { cache: "no-store" }).then(function (r) {
        if (!r.ok) return apiError(r).then(function (e) { throw new Error(e.message); });
        return r.json();
      });
    }

    function loadNewest() {
      setState("connecting");
      fetchPage(null).then(function (page) {
        page.comments.slice().reverse().forEach(insert);
        modShowPinned(page.pinned || null);
        modLoadSettings();
        nextCursor = page.next_cursor;
        streamSeq = page.comments.length ? page.comments[0].seq : 0;
        olderLabel();
        toBottom();
        connect();
        fillViewport();
      }, function () {
        setState("offline");
        olderLabel("Could not load comments. Retrying…");
        retryTimer = setTimeout(loadNewest, backoff());
      });
    }

    function loadOlder() {
      if (loadingOlder || nextCursor === null || streamSeq === null) return;
      loadingOlder = true;
      olderLabel("Loading older comments…");
      fetchPage(nextCursor).then(function (page) {
        var height = scroller.scrollHeight, top = scroller.scrollTop;
        var fragment = document.createDocumentFragment();
        var firstShown = list.firstElementChild ? Number(list.firstElementChild.dataset.seq) : Infinity;
        page.comments.slice().reverse().forEach(function (c) {
          if (!valid(c) || shown.has(c.seq)) return;
          if (c.seq < firstShown) {
            var li = render(c);
            shown.set(c.seq, li);
            fragment.appendChild(li);
          } else {
            insert(c);
          }
        });
        list.insertBefore(fragment, list.firstChild);
        nextCursor = page.next_cursor;
        olderLabel();
        scroller.scrollTop = top + (scroller.scrollHeight - height); // the view stays put
        loadingOlder = false;
        fillViewport();
      }, function () {
        loadingOlder = false;
        olderLabel("Could not load older comments. Scroll up to retry.");
      });
    }

    // Too few comments to scroll: load older ones until the list fills the view.
    function fillViewport() {
      if (scroller.scrollHeight <= scroller.clientHeight + NEAR_TOP_PX) loadOlder();
    }

    scroller.addEventListener("scroll", function () {
      if (scroller.scrollTop < NEAR_TOP_PX) loadOlder();
      if (atBottom() && unread) toBottom();
    });
    pill.addEventListener("click", toBottom);

    // ---------- live ----------
    function backoff() {
      var delay = retryDelay;
      retryDelay = Math.min(retryDelay * 2, 30000);
      return delay;
    }

    function setState(state) {
      clearTimeout(offlineTimer);
      var labels = { live: "● Live", connecting: "Connecting…", reconnecting: "Reconnecting…",
        offline: "Offline" };
      if (!navigator.onLine && state !== "live") state = "offline";
      stateEl.dataset.state = state;
      stateEl.textContent = labels[state];
      viewersEl.classList.toggle("lh-stale", state !== "live"); // the last count, greyed
      if (state === "reconnecting") {
        offlineTimer = setTimeout(function () { setState("offline"); }, OFFLINE_AFTER_MS);
      }
    }

    // Open the stream at the last seq we have: no gap and no duplicate with what is shown.
    // EventSource then resumes by itself (Last-Event-ID) after a dropped connection.
    function connect() {
      clearTimeout(retryTimer);
      if (source) source.close();
      var es = new EventSource(api + "/stream?last_event_id=" + streamSeq);
      source = es;
      modListen(es);
      es.onopen = function () {
        if (source !== es) return;
        retryDelay = 1000;
        setState("live");
      };
      es.addEventListener("comment", function (event) {
        if (source !== es) return;
        var c;
        try { c = JSON.parse(event.data); } catch (e) { return; }
        if (!valid(c)) return;
        if (c.seq > streamSeq) streamSeq = c.seq;
        showLive(c);
      });
      es.addEventListener("viewers", function (event) {
        var n;
        try { n = JSON.parse(event.data).count; } catch (e) { return; }
        if (source !== es || !Number.isInteger(n) || n < 0) return;
        viewersEl.textContent = n === 1 ? "1 watching" : n.toLocaleString() + " watching";
        viewersEl.hidden = false;
      });
      es.onerror = function () {
        if (source !== es) return;
        if (es.readyState === EventSource.CLOSED) {
          // The browser gave up (e.g. an error status): start again ourselves, from our seq.
          es.close();
          source = null;
          setState("offline");
          retryTimer = setTimeout(connect, backoff());
        } else if (stateEl.dataset.state === "live" || stateEl.dataset.state === "connecting") {
          setState("reconnecting"); // once: its timer turns it into "offline" if this lasts
        }
      };
    }

    window.addEventListener("offline", function () { setState("offline"); });
    window.addEventListener("online", function () {
      if (streamSeq !== null && (!source || source.readyState === EventSource.CLOSED)) connect();
      else if (source && source.readyState === EventSource.OPEN) setState("live");
      else setState("reconnecting");
    });

    // ---------- posting ----------
    function apiError(response) {
      return response.json().then(function (body) {
        var e = body && body.error;
        return { code: e && e.code || "error", message: e && e.message || response.statusText };
      }, function () {
        return { code: "error", message: response.statusText || "HTTP " + response.status };
      });
    }

    function showError(text) {
      errorEl.textContent = text;
      errorEl.hidden = !text;
    }

    function tokenUser(token) {
      try {
        var part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
        var bytes = Uint8Array.from(atob(part), function (ch) { return ch.charCodeAt(0); });
        var claims = JSON.parse(new TextDecoder().decode(bytes));
        return typeof claims.sub === "string" ? claims : null;
      } catch (e) {
        return null;
      }
    }

    function storage(write) {
      try { return write(window.localStorage); } catch (e) { return null; }
    }

    // dev: a dev token (sign out, pick a name); otherwise the site's (no join form).
    function signIn(token, dev) {
      var claims = token ? tokenUser(token) : null;
      me = { token: token, user: claims && claims.sub, dev: dev };
      $("lh-join").hidden = !!token || !dev;
      $("lh-post").hidden = !token;
      $("lh-who").hidden = !token;
      $("lh-signout").hidden = !dev;
      $("lh-sep").hidden = !dev;
      $("lh-user").textContent =
        (claims && typeof claims.name === "string" && claims.name) || me.user || "you";
      modSignedIn(claims);
    }

    function signOut() {
      storage(function (s) { s.removeItem(DEV_KEY); });
      signIn(null, true);
    }

    var renewing = false; // asked the parent page for a fresh token after a 401

    function renewed() {
      showError(me.token ? "Your sign-in was renewed. Send again." : "You are signed out.");
    }

    // Inside a site's iframe: that site (an allowed origin only) hands us the token.
    function askParent(type) {
      if (window.parent !== window && embedOrigins.length) {
        window.parent.postMessage({ type: type, video: video }, "*"); // carries no secret
      }
    }

    function listenToParent() {
      window.addEventListener("message", function (event) {
        if (event.source !== window.parent || embedOrigins.indexOf(event.origin) < 0) return;
        var data = event.data;
        if (!data || data.type !== "livehub:token") return;
        if (typeof data.token === "string" && data.token) signIn(data.token, false);
        else signIn(null, false);
        if (renewing) {
          renewing = false;
          renewed();
        }
      });
    }

    function initialToken() {
      if (getToken) { // mounted by embed.js: the site signs people in
        signIn(null, false);
        return refreshToken();
      }
      var params = new URLSearchParams(location.search);
      var token = params.get("token");
      if (token) {
        params.delete("token"); // keep it out of the address bar, history and shared links
        var rest = params.toString();
        history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
        return signIn(token, false);
      }
      if (typeof window.LIVEHUB_TOKEN === "string" && window.LIVEHUB_TOKEN) {
        return signIn(window.LIVEHUB_TOKEN, false);
      }
      if (window.parent !== window && embedOrigins.length) {
        listenToParent();
        signIn(null, false);
        return askParent("livehub:ready");
      }
      signIn(storage(function (s) { return s.getItem(DEV_KEY); }), true);
    }

    // Ask the embedding site for a (fresh) token; resolves once signed in or not.
    function refreshToken() {
      return Promise.resolve().then(getToken).then(function (token) {
        signIn(typeof token === "string" && token ? token : null, false);
      }, function () {
        signIn(null, false);
      });
    }

    $("lh-join").addEventListener("submit", function (event) {
      event.preventDefault();
      var button = $("lh-join-button");
      button.disabled = true;
      fetch(base + "/dev/token", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user: $("lh-name").value }),
      }).then(function (r) {
        if (r.ok) {
          return r.json().then(function (body) {
            storage(function (s) { s.setItem(DEV_KEY, body.token); });
            showError("");
            signIn(body.token, true);
            messageEl.focus();
          });
        }
        if (r.status === 404) {
          showError("This server does not hand out tokens for names. Open this page from " +
            "the site you are signed in to (it passes ?token=).");
          return;
        }
        return apiError(r).then(function (e) { showError(e.message); });
      }, function () {
        showError("Could not reach the server. Try again.");
      }).finally(function () { button.disabled = false; });
    });

    function explain(status, e, response) {
      if (status === 401) {
        if (getToken) { // the site may have a fresh token: the next send uses it
          refreshToken().then(renewed);
          return "Your sign-in expired (" + e.message + "). Renewing…";
        }
        if (window.parent !== window && embedOrigins.length) {
          renewing = true;
          askParent("livehub:token-expired");
          return "Your sign-in expired (" + e.message + "). Renewing…";
        }
        if (!me.dev) return "You are signed out (" + e.message + "). Reload the page to sign in.";
        signOut();
        return "You are signed out (" + e.message + "). Pick a name to post again.";
      }
      if (status === 403) return modExplain(e);
      if (status === 429) {
        var wait = response.headers.get("Retry-After");
        return "You are posting too fast." + (wait ? " Try again in " + wait + " s." : "");
      }
      if (status === 422 || status === 413 || status === 400) return e.message;
      return "The server could not take your comment (" + e.message + "). Try again.";
    }

    $("lh-post").addEventListener("submit", function (event) {
      event.preventDefault();
      var text = messageEl.value;
      if (!text.trim()) return;
      var button = $("lh-send");
      button.disabled = true;
      fetch(api, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + me.token },
        body: JSON.stringify({ message: text }),
      }).then(function (r) {
        if (r.status === 201) {
          return r.json().then(function (c) {
            messageEl.value = "";
            counter();
            showError("");
            insert(c); // the stream brings it too; de-duplicated by seq
            toBottom();
          });
        }
        return apiError(r).then(function (e) { showError(explain(r.status, e, r)); });
      }, function () {
        showError("Could not reach the server. Your comment was not sent.");
      }).finally(function () { button.disabled = mod.closed; }); // closed meanwhile: stays off
    });

    messageEl.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("lh-post").requestSubmit();
      }
    });

    function counter() {
      var n = Array.from(messageEl.value.trim()).length;
      countEl.textContent = n > maxChars * 0.8 ? n + " / " + maxChars : "";
      countEl.classList.toggle("lh-over", n > maxChars);
    }
    messageEl.addEventListener("input", function () {
      counter();
      if (!errorEl.hidden) showError("");
    });
    $("lh-signout").addEventListener("click", signOut);

    // ---------- moderation: roles, pinned comment, deletions, chat closed ----------
    // Roles come from the token's "roles" claim (what the server checks; the page only
    // decides which controls to show). Deletions, pins and settings changes arrive on
    // the stream as events with their own ids, so resuming replays them in order.
    function modIsModerator() {
      return mod.roles.indexOf("moderator") >= 0 || mod.roles.indexOf("moderator:" + video) >= 0;
    }

    function modSignedIn(claims) {
      var roles = claims ? claims.roles : null;
      if (typeof roles === "string") roles = roles.split(/\s+/);
      mod.roles = Array.isArray(roles) ? roles.filter(function (r) { return typeof r === "string"; }) : [];
      $("lh-modbar").hidden = !modIsModerator();
      $("lh-unpin").hidden = !modIsModerator();
      list.querySelectorAll("li.lh-c").forEach(function (li) {
        var c = { seq: Number(li.dataset.seq), user_id: li.dataset.user, user_name: li.dataset.name };
        li.classList.toggle("lh-mine", me.user !== null && c.user_id === me.user);
        modDecorate(li, c);
      });
    }

    // The controls on one comment: a moderator may pin, delete and ban; its author may delete.
    function modDecorate(li, c) {
      li.dataset.user = String(c.user_id);
      li.dataset.name = displayName(c);
      var old = li.querySelector(".lh-tools");
      if (old) old.remove();
      var mine = me.user !== null && c.user_id === me.user;
      if (!modIsModerator() && !mine) return;
      var tools = el("div", "lh-tools");
      if (modIsModerator()) {
        var pin = withAttrs(el("button", "lh-link lh-pin", "Pin"), { type: "button" });
        pin.addEventListener("click", function () {
          modRequest("PUT", videoApi + "/pin", { seq: c.seq });
        });
        tools.appendChild(pin);
      }
      var del = withAttrs(el("button", "lh-link lh-delete", "Delete"), { type: "button" });
      del.addEventListener("click", function () {
        modRequest("DELETE", api + "/" + c.seq).then(function (ok) {
          if (ok) modRemove(c.seq); // the stream says so too, to everyone
        });
      });
      tools.appendChild(del);
      if (modIsModerator() && !mine) {
        var who = displayName(c);
        var ban = withAttrs(el("select", "lh-ban"), { "aria-label": "Ban " + who });
        ban.appendChild(new Option("Ban…", ""));
        BAN_CHOICES.forEach(function (choice) { ban.appendChild(new Option(choice[1], choice[0])); });
        ban.addEventListener("change", function () {
          var choice = ban.value;
          ban.value = "";
          if (!choice) return;
          var seconds = choice === "permanent" ? null : Number(choice);
          modRequest("POST", videoApi + "/bans",
            { user_id: String(c.user_id), seconds: seconds }).then(function (ok) {
            if (ok) modNotice(who + " is banned " + (seconds === null ? "for good" :
              "for " + BAN_CHOICES.filter(function (x) { return x[0] === choice; })[0][1]));
          });
        });
        tools.appendChild(ban);
      }
      li.appendChild(tools);
    }

    function modRequest(method, url, body) {
      var init = { method: method, headers: { "Authorization": "Bearer " + me.token } };
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      return fetch(url, init).then(function (r) {
        if (r.ok) { showError(""); return true; }
        return apiError(r).then(function (e) { showError(e.message); return false; });
      }, function () {
        showError("Could not reach the server. Try again.");
        return false;
      });
    }

    function modNotice(text) {
      var notice = $("lh-notice");
      notice.textContent = text;
      setTimeout(function () { if (notice.textContent === text) notice.textContent = ""; }, 5000);
    }

    function modRemove(seq) {
      var li = shown.get(seq);
      if (li) {
        li.remove();
        shown.delete(seq);
        olderLabel();
      }
      if (mod.pinnedSeq === seq) modShowPinned(null);
    }

    function modShowPinned(c) {
      var box = $("lh-pinned");
      if (!valid(c)) {
        mod.pinnedSeq = null;
        box.hidden = true;
        return;
      }
      mod.pinnedSeq = c.seq;
      var name = $("lh-pin-user");
      name.textContent = displayName(c);
      name.title = displayName(c) !== String(c.user_id) ? String(c.user_id) : "";
      $("lh-pin-msg").textContent = String(c.message);
      box.hidden = false;
    }

    function modShowSettings(s) {
      mod.closed = !!s.closed;
      $("lh-closed").hidden = !mod.closed;
      $("lh-post").classList.toggle("lh-off", mod.closed);
      $("lh-send").disabled = mod.closed;
      $("lh-toggle-chat").textContent = mod.closed ? "Open chat" : "Close chat";
      if (typeof s.max_message_chars === "number") maxChars = s.max_message_chars;
    }

    function modLoadSettings() {
      fetch(videoApi + "/settings", { cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) { if (s) modShowSettings(s); }, function () {});
    }

    function modExplain(e) {
      if (e.code === "banned") return "You are banned from this chat.";
      if (e.code === "chat_closed") return "The chat is closed.";
      return e.message;
    }

    // Moderation events on the stream; their ids advance our resume position too.
    function modListen(es) {
      function handle(name, fn) {
        es.addEventListener(name, function (event) {
          if (source !== es) return;
          var data;
          try { data = JSON.parse(event.data); } catch (e) { return; }
          var id = Number(event.lastEventId);
          if (event.lastEventId && Number.isInteger(id) && id > streamSeq) streamSeq = id;
          fn(data || {});
        });
      }
      handle("deleted", function (d) { if (Number.isInteger(d.seq)) modRemove(d.seq); });
      handle("pinned", function (d) { modShowPinned(d.comment || null); });
      handle("settings", modShowSettings);
    }

    $("lh-unpin").addEventListener("click", function () {
      modRequest("DELETE", videoApi + "/pin");
    });
    $("lh-toggle-chat").addEventListener("click", function () {
      modRequest("PATCH", videoApi + "/settings", { closed: !mod.closed });
    });

    initialToken();
    loadNewest();
  }

  window.LivehubViewer = { mount: mount };

  // The viewer page: mount on #livehub with what the server filled in.
  var page = document.getElementById("livehub");
  if (page && page.dataset.video) {
    mount(page, {
      video: page.dataset.video,
      maxChars: page.dataset.maxChars,
      embedOrigins: (page.dataset.embedOrigins || "").split(" ").filter(Boolean),
    });
  }
})();

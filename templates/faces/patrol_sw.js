/* Service worker of /patrol/ (version {{ version }}): the page and its static files come from the cache
   when the network is gone, so the phone still opens the page and its queue offline — from the home screen,
   every time. API calls are never cached: the page keeps its own queue of writes in IndexedDB.

   - The page is stored under one key, its bare path: the server answers it with `Vary: Cookie,
     Accept-Language`, and a reload from the home screen (another cookie jar state, ?case=…) would miss an
     exact match; so it is looked up with ignoreVary/ignoreSearch.
   - The version is a digest of the static files (gridmgmt.faces.views.static_version): a deploy changes
     this file, the browser installs it, and the old cache is dropped on activation.
   - Static files the page loaded before this worker controlled it are handed over by the page (a "cache"
     message with their URLs), so the first visit is enough to open offline. */
const CACHE = "gridmgmt-patrol-{{ version }}";
const SHELL = {{ shell|safe }};
const PAGE = SHELL[0];
const LOOKUP = { ignoreVary: true, ignoreSearch: true };

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});
// The page's own static files and tiles (same origin only), cached if not cached yet.
self.addEventListener("message", (event) => {
  const urls = ((event.data && event.data.cache) || []).filter((u) => {
    const url = new URL(u, location.origin);
    return url.origin === location.origin && (url.pathname.startsWith("/static/") || url.pathname.startsWith("/tiles/"));
  });
  event.waitUntil(
    caches.open(CACHE).then((c) =>
      Promise.all(urls.map((u) => c.match(u, { ignoreVary: true }).then((hit) => hit || c.add(u).catch(() => null)))),
    ),
  );
});
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname.startsWith("/static/")) {
    // cache first: the cache's name changes with the static files (see above)
    event.respondWith(
      caches.match(event.request, { ignoreVary: true }).then((hit) => hit || fetch(event.request).then((r) => {
        const copy = r.clone();
        if (r.ok) caches.open(CACHE).then((c) => c.put(event.request, copy));
        return r;
      })),
    );
  } else if (url.pathname === PAGE) {
    // network first, stored under the bare path; the last copy when offline
    event.respondWith(
      fetch(event.request).then((r) => {
        const copy = r.clone();
        if (r.ok && !r.redirected) caches.open(CACHE).then((c) => c.put(PAGE, copy));
        return r;
      }).catch(() => caches.match(PAGE, LOOKUP).then((hit) => hit || Response.error())),
    );
  } else if (url.pathname.startsWith("/tiles/")) {
    event.respondWith(
      fetch(event.request).then((r) => {
        const copy = r.clone();
        if (r.ok) caches.open(CACHE).then((c) => c.put(event.request, copy));
        return r;
      }).catch(() => caches.match(event.request, { ignoreVary: true }).then((hit) => hit || Response.error())),
    );
  }
});
// A system notification of a new task (static/js/faces/inbox.js): a tap brings the phone page forward.
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "{{ shell.0|escapejs }}";
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((open) => {
      const page = open.find((c) => new URL(c.url).pathname === new URL(url, location.origin).pathname);
      return page ? page.focus().then((c) => c && c.navigate(url)) : self.clients.openWindow(url);
    }),
  );
});

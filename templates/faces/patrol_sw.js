/* Service worker of /patrol/ (version {{ version }}): the page and its static files come from the cache
   when the network is gone, so the phone still opens the page and its queue offline. API calls are never
   cached: the page keeps its own queue of writes in IndexedDB. */
const CACHE = "gridmgmt-patrol-{{ version }}";
const SHELL = {{ shell|safe }};

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname.startsWith("/static/")) {
    // cache first: static files are versioned by deployment
    event.respondWith(
      caches.match(event.request).then((hit) => hit || fetch(event.request).then((r) => {
        const copy = r.clone();
        if (r.ok) caches.open(CACHE).then((c) => c.put(event.request, copy));
        return r;
      })),
    );
  } else if (url.pathname === "/patrol/" || url.pathname.startsWith("/tiles/")) {
    // network first, the last copy when offline
    event.respondWith(
      fetch(event.request).then((r) => {
        const copy = r.clone();
        if (r.ok) caches.open(CACHE).then((c) => c.put(event.request, copy));
        return r;
      }).catch(() => caches.match(event.request)),
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

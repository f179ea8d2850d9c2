/* The resident's reports, remembered by this device (no account): case code, tracking token, when and
   what. localStorage "gm-reports" holds the list (newest first); "gm-track-<code>" holds each token, as the
   tracking page has always read it. */
const KEY = "gm-reports";
const MAX = 50;

export function trackPath(code) {
  return `/report/track/${encodeURIComponent(code)}`;
}

/* The link to keep: with the token it lets any device follow and rate the case. */
export function trackUrl(code, token) {
  return new URL(trackPath(code) + (token ? `?token=${encodeURIComponent(token)}` : ""), location.origin).href;
}

export function tokenOf(code) {
  return localStorage.getItem(`gm-track-${code}`) || "";
}

export function myReports() {
  let list = [];
  try {
    list = JSON.parse(localStorage.getItem(KEY) || "[]");
  } catch (err) {
    list = [];
  }
  if (!Array.isArray(list)) list = [];
  // Reports made before the list existed: their tokens are there, under gm-track-<code>.
  const known = new Set(list.map((r) => r.code));
  for (let i = 0; i < localStorage.length; i++) {
    const k = localStorage.key(i);
    if (k && k.startsWith("gm-track-") && !known.has(k.slice(9))) list.push({ code: k.slice(9) });
  }
  return list.filter((r) => r && typeof r.code === "string" && r.code);
}

/* Remember a report (or update what is known of it); the token, when given, replaces the kept one. */
export function myReportSave({ code, token = "", category = "", at = "" }) {
  if (!code) return;
  if (token) localStorage.setItem(`gm-track-${code}`, token);
  const list = myReports();
  const old = list.find((r) => r.code === code) || {};
  const entry = { ...old, code, category: category || old.category || "", at: at || old.at || new Date().toISOString() };
  const rest = list.filter((r) => r.code !== code);
  localStorage.setItem(KEY, JSON.stringify([entry, ...rest].slice(0, MAX)));
}

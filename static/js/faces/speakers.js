/* The street loudspeaker form, shared by the desk and the wall: which speakers (the chosen
   one, or all near a cell), what to say (a category's preset, or typed words), how many times; it posts to
   /api/speaker-calls/ and shows what each speaker answered. Whether this user may call at all is the server's
   answer (the page config's `speakers.call`, a case's `speaker_call`); refused or failed calls show the
   server's message. */
import { api, config, h, say, t } from "./common.js";

export const speakerConfig = { call: false, presets: [], repeatMax: 5, ...(config.speakers || {}) };

/* targets: [{label, body}] — each a choice of speakers as the call's body names it ({speaker}, {cell}, {case}).
   base: fields every call carries (e.g. {case: id}). preset: the category code to start with. */
export function speakerForm({ targets, base = {}, preset = "", onSent } = {}) {
  const target = h("select", { id: "sp-target", "aria-label": t("speaker_target") }, targets.map((x, i) => h("option", { value: String(i), text: x.label })));
  const presetBox = h(
    "select",
    { id: "sp-preset", "aria-label": t("speaker_preset") },
    h("option", { value: "", text: t("speaker_typed") }),
    speakerConfig.presets.map((p) => h("option", { value: p.code, text: `${p.name}: ${p.text}`, selected: p.code === preset })),
  );
  const text = h("textarea", { id: "sp-text", rows: 2, maxlength: 200, "aria-label": t("speaker_text") });
  const repeat = h("input", { id: "sp-repeat", type: "number", min: 1, max: speakerConfig.repeatMax, value: 2, "aria-label": t("speaker_repeat") });
  const send = h("button", { type: "submit", class: "gm-primary", id: "sp-send", text: t("speaker_send") });
  const msg = h("p", { class: "gm-msg", role: "alert", id: "sp-msg", hidden: true });
  const results = h("ul", { class: "gm-list gm-speak-results", id: "sp-results" });
  const presetText = () => (speakerConfig.presets.find((p) => p.code === presetBox.value) || {}).text || "";
  presetBox.addEventListener("change", () => {
    text.value = presetText();
    text.readOnly = Boolean(presetBox.value);
  });
  presetBox.dispatchEvent(new Event("change"));
  if (!targets.length) {
    send.disabled = true;
    say(msg, t("speaker_none"), "warn");
  }

  async function submit(e) {
    e.preventDefault();
    const words = presetBox.value ? { preset: presetBox.value } : { text: text.value.trim() };
    const body = { ...base, ...targets[Number(target.value)].body, ...words, repeat: Number(repeat.value) };
    send.disabled = true;
    say(msg, t("speaker_sending"), "");
    results.replaceChildren();
    const r = await api("/api/speaker-calls/", { method: "POST", body });
    send.disabled = false;
    // A 502 is a call that was made and logged but that no speaker heard: its results come with the error.
    const call = r.ok ? r.data : r.data && r.data.call;
    say(msg, r.ok ? r.data.detail : r.message, r.ok ? (call.outcome === "delivered" ? "ok" : "warn") : "error");
    if (call && call.results) {
      results.replaceChildren(...call.results.map((x) => h("li", { "data-ok": String(x.ok), "data-speaker": x.speaker }, h("strong", { text: x.name }), h("span", { class: "gm-muted", text: ` ${x.message}` }))));
    }
    if (onSent && call) onSent(call);
  }

  return h(
    "form",
    { class: "gm-speak", id: "sp-form", onsubmit: submit },
    h("label", { class: "gm-field" }, t("speaker_target"), target),
    h("label", { class: "gm-field" }, t("speaker_preset"), presetBox),
    text,
    h("div", { class: "gm-field" }, h("label", {}, `${t("speaker_repeat")} `, repeat), send),
    msg,
    results,
  );
}

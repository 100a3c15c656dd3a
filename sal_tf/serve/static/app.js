// The search page of sal-serve: plain JavaScript over the JSON API (BUILD.md "Search service").
// Crops are fetched with the API key and shown through blob: URLs; the key stays in this tab.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { queryB64: null, blobs: [], journeyBlobs: [] };

function apiHeaders(extra) {
  const key = $("api-key").value.trim();
  return Object.assign(key ? { Authorization: "Bearer " + key } : {}, extra || {});
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({}, options, { headers: apiHeaders(options && options.headers) }));
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response;
}

function showStatus(id, text, isError) {
  $(id).textContent = text;
  $(id).className = isError ? "error" : "";
}

async function refreshHealth() {
  try {
    const health = await (await fetch("/healthz")).json();
    $("health").textContent = `${health.count} items · ${health.store} · ${health.model}`;
  } catch (e) {
    $("health").textContent = "service unreachable";
  }
}

function readAsBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

// Market / Duke names carry the camera: 0002_c1s1_000451_03.jpg, 0005_c2_f0046985.jpg.
function cameraFromName(name) {
  const match = /^-?\d+_c(\d+)/.exec(name);
  return match ? Number(match[1]) : null;
}

async function setQuery(file) {
  if (!file) return;
  state.queryB64 = await readAsBase64(file);
  $("query-image").src = "data:" + (file.type || "image/jpeg") + ";base64," + state.queryB64;
  $("query-name").textContent = file.name;
  const camera = cameraFromName(file.name);
  $("query-camera").value = camera === null ? "" : camera;
  await Promise.all([search(), showAttention()]);
}

function numberOrNull(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number(text);
}

function searchBody() {
  const body = { image_b64: state.queryB64, k: Number($("k").value) || 10 };
  const camera = numberOrNull("query-camera");
  if ($("exclude-camera").checked && camera !== null) body.exclude_camera = camera;
  const cameras = $("cameras").value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (cameras.length) body.cameras = cameras.map(Number);
  const t0 = numberOrNull("time-from"), t1 = numberOrNull("time-to");
  if (t0 !== null || t1 !== null) body.time_range = [t0 === null ? -1e300 : t0, t1 === null ? 1e300 : t1];
  if ($("group-by-person").checked) body.group_by = "person_id";
  return body;
}

async function search() {
  if (!state.queryB64) { showStatus("status", "Pick or drop a query image first.", true); return; }
  showStatus("status", "Searching…");
  try {
    const response = await api("/v1/search", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(searchBody()),
    });
    const answer = await response.json();
    await showResults(answer.results, answer.groups);
    $("took").textContent = `(${answer.results.length} in ${answer.took_ms.toFixed(1)} ms)`;
    showStatus("status", answer.results.length ? "" : "No gallery item matches these filters.");
  } catch (e) {
    showStatus("status", e.status === 401 ? "The service wants an API key (top right)." : e.message, true);
  }
}

function formatTime(t) {
  if (t === null || t === undefined) return "–";
  return t > 1e9 ? new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) : String(t);
}

async function cropUrl(id, blobs) {
  const response = await api("/v1/gallery/" + encodeURIComponent(id) + "/image");
  const url = URL.createObjectURL(await response.blob());
  blobs.push(url);
  return url;
}

function known(value) {
  return value !== null && value !== undefined;
}

// The model's calibrated "same person?" (null when the model has none): shown beside the distance.
function samePersonText(p) {
  return known(p) ? `same person ${Math.round(p * 100)}%` : "";
}

function journeyButton(personId) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "journey-link";
  button.textContent = "journey";
  button.title = `Where and when person ${personId} was seen`;
  button.addEventListener("click", () => showJourney(personId));
  return button;
}

function hitCard(hit, rank) {
  const item = document.createElement("li");
  item.className = "hit";
  item.dataset.id = hit.id;
  item.dataset.rank = rank;
  item.dataset.camera = hit.camera === null ? "" : hit.camera;
  item.dataset.personId = known(hit.person_id) ? hit.person_id : "";
  item.dataset.samePerson = known(hit.same_person) ? hit.same_person : "";
  const image = document.createElement("img");
  image.alt = hit.path || hit.id;
  const lines = [
    ["rank", `#${rank} · d = ${hit.distance.toFixed(3)}`],
    ["same-person", samePersonText(hit.same_person)],
    ["camera", `camera ${hit.camera === null ? "–" : hit.camera} · time ${formatTime(hit.timestamp)}`],
    ["id", hit.path ? hit.path.split("/").pop() : hit.id],
  ];
  item.title = hit.id;
  item.append(image);
  for (const [cls, text] of lines) {
    const div = document.createElement("div");
    div.className = cls;
    div.textContent = text;  // text, never HTML: ids and paths are user data
    item.append(div);
  }
  if (known(hit.person_id)) item.append(journeyButton(hit.person_id));
  return [item, image];
}

// A group's heading in the grid of matches: the person, their nearest match, a journey link.
function groupHead(group) {
  const head = document.createElement("li");
  head.className = "group-head";
  head.dataset.personId = group.person_id;
  const same = samePersonText(group.same_person);
  head.textContent = `person ${group.person_id} · ${group.hits.length} match(es) · d = ${group.distance.toFixed(3)}`
    + (same ? ` · ${same}` : "") + " ";
  head.append(journeyButton(group.person_id));
  return head;
}

async function showResults(results, groups) {
  state.blobs.forEach((url) => URL.revokeObjectURL(url));
  state.blobs = [];
  const rank = new Map(results.map((hit, i) => [hit.id, i + 1]));
  const cards = new Map(results.map((hit) => [hit.id, hitCard(hit, rank.get(hit.id))]));
  let items = results.map((hit) => cards.get(hit.id)[0]);
  if (groups) {  // each person's matches under a heading; matches of no known person last
    const grouped = new Set(groups.flatMap((g) => g.hits.map((h) => h.id)));
    items = groups.flatMap((g) => [groupHead(g), ...g.hits.map((h) => cards.get(h.id)[0])]);
    items.push(...results.filter((h) => !grouped.has(h.id)).map((h) => cards.get(h.id)[0]));
  }
  $("results").replaceChildren(...items);
  await Promise.all(results.map(async (hit) => {
    const image = cards.get(hit.id)[1];
    try { image.src = await cropUrl(hit.id, state.blobs); } catch (e) { image.alt = "crop unavailable"; }
  }));
}

// --- a person's journey: one row per camera, their crops in time order along it ----------------

function cameraLabel(camera) {
  return known(camera) ? `camera ${camera}` : "camera ?";
}

function journeyCameras(appearances) {
  const cameras = [...new Set(appearances.map((a) => a.camera))];
  return cameras.sort((a, b) => (known(a) ? a : Infinity) - (known(b) ? b : Infinity));
}

function timeSince(t, t0) {
  if (!known(t) || !known(t0)) return "";
  const s = t - t0;
  return s < 120 ? `+${s.toFixed(1)} s` : s < 7200 ? `+${(s / 60).toFixed(1)} min` : `+${(s / 3600).toFixed(1)} h`;
}

function appearanceFigure(appearance, row, column, t0) {
  const figure = document.createElement("figure");
  figure.className = "appearance";
  figure.dataset.id = appearance.id;
  figure.dataset.camera = known(appearance.camera) ? appearance.camera : "";
  figure.dataset.timestamp = known(appearance.timestamp) ? appearance.timestamp : "";
  figure.style.gridRow = String(row);
  figure.style.gridColumn = String(column);
  const image = document.createElement("img");
  image.alt = appearance.path || appearance.id;
  const caption = document.createElement("figcaption");  // the time of day (the date: the tooltip), then since the first
  const when = formatTime(appearance.timestamp);
  caption.textContent = when.length === 19 ? when.slice(11) : when;
  if (column > 2 && known(appearance.timestamp)) caption.append(document.createElement("br"), timeSince(appearance.timestamp, t0));
  figure.title = `${appearance.id} · ${when}`;
  figure.append(image, caption);
  return [figure, image];
}

async function renderJourney(journey) {
  state.journeyBlobs.forEach((url) => URL.revokeObjectURL(url));
  state.journeyBlobs = [];
  const appearances = journey.appearances;  // in time order (the service's)
  const cameras = journeyCameras(appearances);
  const grid = $("journey");
  grid.style.gridTemplateColumns = `7em repeat(${appearances.length}, minmax(76px, 110px))`;
  const cells = [];
  cameras.forEach((camera, r) => {
    const label = document.createElement("div");
    label.className = "journey-camera";
    label.style.gridRow = String(r + 1);
    label.textContent = cameraLabel(camera);
    const lane = document.createElement("div");
    lane.className = "journey-lane";
    lane.dataset.camera = known(camera) ? camera : "";
    lane.style.gridRow = String(r + 1);
    cells.push(label, lane);
  });
  const t0 = appearances.length ? appearances[0].timestamp : null;
  const figures = appearances.map((a, i) => appearanceFigure(a, cameras.indexOf(a.camera) + 1, i + 2, t0));
  grid.replaceChildren(...cells, ...figures.map(([figure]) => figure));
  await Promise.all(appearances.map(async (a, i) => {
    try { figures[i][1].src = await cropUrl(a.id, state.journeyBlobs); } catch (e) { figures[i][1].alt = "crop unavailable"; }
  }));
  return cameras;
}

async function showJourney(personId) {
  $("journey-panel").hidden = false;
  $("journey-title").textContent = `Journey of person ${personId}`;
  $("journey-summary").textContent = "";
  showStatus("journey-status", "Loading…");
  try {
    const journey = await (await api("/v1/journeys/" + encodeURIComponent(personId))).json();
    const cameras = await renderJourney(journey);
    const times = journey.appearances.map((a) => a.timestamp).filter(known);
    const span = times.length > 1 ? `, ${timeSince(times[times.length - 1], times[0]).slice(1)} from first to last` : "";
    $("journey-summary").textContent = `(${journey.appearances.length} appearance(s) in ${cameras.length} camera(s)${span})`;
    showStatus("journey-status", "");
    $("journey-panel").scrollIntoView({ block: "nearest" });
  } catch (e) {
    $("journey").replaceChildren();
    showStatus("journey-status", e.message, true);
  }
}

async function showAttention() {
  $("attention-note").textContent = "";
  $("attention-image").removeAttribute("src");
  try {
    const response = await api("/v1/attention", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image_b64: state.queryB64 }),
    });
    $("attention-image").src = URL.createObjectURL(await response.blob());
    $("attention-note").textContent = "attention maps";
  } catch (e) {
    $("attention-note").textContent = e.status === 501 ? "no attention maps for this model" : "";
  }
}

async function addToGallery(event) {
  event.preventDefault();
  const form = new FormData($("add-form"));
  for (const [name, value] of Array.from(form.entries())) {
    if (value === "") form.delete(name);
  }
  if (!$("add-files").files.length) { showStatus("add-status", "Choose one or more image files.", true); return; }
  showStatus("add-status", "Adding…");
  try {
    const answer = await (await api("/v1/gallery", { method: "POST", body: form })).json();
    showStatus("add-status", `Added ${answer.ids.length}; the gallery holds ${answer.count}.`);
    $("add-form").reset();
    refreshHealth();
  } catch (e) {
    showStatus("add-status", e.message, true);
  }
}

function setUp() {
  $("api-key").value = sessionStorage.getItem("sal-api-key") || "";
  $("api-key").addEventListener("change", () => sessionStorage.setItem("sal-api-key", $("api-key").value));
  $("key-form").addEventListener("submit", (e) => e.preventDefault());
  $("query-file").addEventListener("change", (e) => setQuery(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    setQuery(e.dataTransfer.files[0]);
  });
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); search(); });
  $("add-form").addEventListener("submit", addToGallery);
  $("group-by-person").addEventListener("change", () => { if (state.queryB64) search(); });
  $("journey-close").addEventListener("click", () => { $("journey-panel").hidden = true; });
  refreshHealth();
}

document.addEventListener("DOMContentLoaded", setUp);

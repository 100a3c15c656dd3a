// The search page of sal-serve: plain JavaScript over the JSON API (BUILD.md "Search service").
// Crops are fetched with the API key and shown through blob: URLs; the key stays in this tab.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { queryB64: null, blobs: [] };

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
    await showResults(answer.results);
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

async function cropUrl(id) {
  const response = await api("/v1/gallery/" + encodeURIComponent(id) + "/image");
  const url = URL.createObjectURL(await response.blob());
  state.blobs.push(url);
  return url;
}

function hitCard(hit, rank) {
  const item = document.createElement("li");
  item.className = "hit";
  item.dataset.id = hit.id;
  item.dataset.rank = rank;
  item.dataset.camera = hit.camera === null ? "" : hit.camera;
  item.dataset.personId = hit.person_id === null || hit.person_id === undefined ? "" : hit.person_id;
  const image = document.createElement("img");
  image.alt = hit.path || hit.id;
  const lines = [
    ["rank", `#${rank} · d = ${hit.distance.toFixed(3)}`],
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
  return [item, image];
}

async function showResults(results) {
  state.blobs.forEach((url) => URL.revokeObjectURL(url));
  state.blobs = [];
  const cards = results.map((hit, i) => hitCard(hit, i + 1));
  $("results").replaceChildren(...cards.map(([item]) => item));
  await Promise.all(results.map(async (hit, i) => {
    try { cards[i][1].src = await cropUrl(hit.id); } catch (e) { cards[i][1].alt = "crop unavailable"; }
  }));
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
  refreshHealth();
}

document.addEventListener("DOMContentLoaded", setUp);

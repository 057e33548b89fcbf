// motionsynth editor: upload a BVH, build a task (keyframes on the timeline, body parts, prefix, label), run a model
// through the JSON API (/api/...), animate input and result as 3D stick figures (three.js), download the result BVH.
// Colours follow `motionsynth render`: observed parts grey, synthesised parts coloured by side.
import * as THREE from "three";
import { OrbitControls } from "/static/vendor/OrbitControls.js";

const $ = (id) => document.getElementById(id);
const SIDE = { left: 0xe4572e, right: 0x1f77b4, centre: 0x6a3d9a };
const OBS = { left: 0xa5a5a5, right: 0x787878, centre: 0x8c8c8c };
const GHOST = 0xc9cdd8;
const PART_NAMES = { upper: "upper body", lower: "lower body", left_arm: "left arm", right_arm: "right arm",
  left_leg: "left leg", right_leg: "right leg", torso: "torso", head: "head" };

const state = {
  models: [], tasks: {}, maxUpload: 0, maxSamples: 16,
  clip: null,        // the upload: {id, name, frames, fps, skeleton, positions (decoded), models}
  result: null,      // the last run: {id, task, model, frames, fps, skeleton, observed, samples}
  keyframes: new Set(),
  frame: 0, playing: false, playStart: 0, playFrame0: 0, busy: false,
};

// ---- the API ------------------------------------------------------------------------------------------------------
// The server refuses a POST without the token it embedded in this page (so that no other site can use the editor).
const TOKEN = document.querySelector('meta[name="motionsynth-token"]').content;

async function api(path, options = {}) {
  let response;
  try {
    const headers = { ...(options.headers || {}) };
    if (options.method === "POST") headers["X-Motionsynth-Token"] = TOKEN;
    response = await fetch(path, { ...options, headers });
  } catch (e) {
    throw new Error(`cannot reach the editor's server (${e.message})`);
  }
  let body = null;
  try { body = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}

// Joint positions arrive as {dtype: "float32", shape: [T, J, 3], data: base64 of little-endian float32 bytes}.
function decodePositions(p) {
  if (p.dtype !== "float32" || p.shape.length !== 3 || p.shape[2] !== 3) throw new Error("unknown positions format");
  const text = atob(p.data);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  const data = new Float32Array(bytes.buffer);  // every browser in use is little-endian
  const [T, J] = p.shape;
  if (data.length !== T * J * 3) throw new Error("positions of the wrong size");
  return { frames: T, joints: J, data, at: (t, j, k) => data[(t * J + j) * 3 + k] };
}

function setStatus(text, kind = "") {
  const el = $("status");
  el.textContent = text;
  el.className = kind;
}

// ---- 3D view ------------------------------------------------------------------------------------------------------
const view = { renderer: null, scene: null, camera: null, controls: null, figures: [], grid: null, height: 170,
  unitY: new THREE.Vector3(0, 1, 0), tmp: new THREE.Vector3(), target: new THREE.Vector3() };

function initView() {
  const container = $("view");
  try {
    view.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true, alpha: true });
  } catch (e) {
    const msg = $("webgl-error");
    msg.textContent = "3D view unavailable: this browser has no WebGL. Tasks and downloads still work.";
    msg.hidden = false;
    return;
  }
  view.renderer.setPixelRatio(window.devicePixelRatio || 1);
  container.prepend(view.renderer.domElement);
  view.scene = new THREE.Scene();
  view.camera = new THREE.PerspectiveCamera(40, 1, 1, 100000);
  view.camera.position.set(250, 200, 450);
  view.controls = new OrbitControls(view.camera, view.renderer.domElement);
  view.controls.target.set(0, 90, 0);
  view.scene.add(new THREE.HemisphereLight(0xffffff, 0x9aa3b8, 2.2));
  const sun = new THREE.DirectionalLight(0xffffff, 1.4);
  sun.position.set(1, 2, 1.5);
  view.scene.add(sun);
  setGrid(170, 0);
  new ResizeObserver(resize).observe(container);
  resize();
}

function resize() {
  if (!view.renderer) return;
  const el = $("view");
  view.renderer.setSize(el.clientWidth, el.clientHeight);
  view.camera.aspect = el.clientWidth / Math.max(1, el.clientHeight);
  view.camera.updateProjectionMatrix();
  drawTimeline();
}

function setGrid(height, floorY) {
  if (!view.scene) return;
  if (view.grid) view.scene.remove(view.grid);
  const size = height * 24;
  view.grid = new THREE.GridHelper(size, 48, 0xb8c0d6, 0xd6dbe8);
  view.grid.position.y = floorY;
  view.scene.add(view.grid);
}

const materials = {};
function material(kind, side) {
  const key = `${kind}:${side}`;
  if (!materials[key]) {
    const color = kind === "syn" ? SIDE[side] : kind === "obs" ? OBS[side] : GHOST;
    materials[key] = new THREE.MeshLambertMaterial({ color, transparent: kind === "ghost",
      opacity: kind === "ghost" ? 0.55 : 1 });
  }
  return materials[key];
}

class Figure {
  // A stick figure: one cylinder per bone (coloured by its child joint), one sphere per joint.
  constructor(skeleton, positions, observed, role, title) {
    this.sk = skeleton;
    this.positions = positions;   // decodePositions(…): at(t, j, k)
    this.observed = observed;     // (t, j) => bool: kept from the input
    this.role = role;             // "input" | "result"
    this.title = title;
    this.group = new THREE.Group();
    const r = view.height * 0.011;
    const bone = new THREE.CylinderGeometry(r, r, 1, 8);
    const ball = new THREE.SphereGeometry(r * 1.7, 12, 8);
    const drawn = new Set(skeleton.drawn);
    this.bones = [];
    this.joints = [];
    for (const j of skeleton.drawn) {
      const p = skeleton.parents[j];
      if (j !== skeleton.root && drawn.has(p)) {
        const mesh = new THREE.Mesh(bone, material("obs", "centre"));
        this.group.add(mesh);
        this.bones.push({ mesh, j, p });
      }
      const dot = new THREE.Mesh(ball, material("obs", "centre"));
      this.group.add(dot);
      this.joints.push({ mesh: dot, j });
    }
    this.label = document.createElement("div");
    this.label.textContent = title;
    $("labels3d").appendChild(this.label);
    view.scene.add(this.group);
  }

  dispose() {
    view.scene.remove(this.group);
    this.label.remove();
  }

  frames() { return this.positions.frames; }

  kind(t, j) {
    const side = this.sk.sides[j] || "centre";
    if (this.observed(t, j)) return material("obs", side);
    return this.role === "input" ? material("ghost", side) : material("syn", side);
  }

  update(frame, offset, centre) {
    const t = Math.min(frame, this.frames() - 1);
    const P = (j, k) => this.positions.at(t, j, k);
    const root = [P(this.sk.root, 0), P(this.sk.root, 1), P(this.sk.root, 2)];
    const dx = offset - (centre ? root[0] : 0), dz = centre ? -root[2] : 0;
    const at = (j) => new THREE.Vector3(P(j, 0) + dx, P(j, 1), P(j, 2) + dz);
    for (const b of this.bones) {
      const a = at(b.p), c = at(b.j);
      const d = c.clone().sub(a);
      const len = d.length();
      b.mesh.position.copy(a).add(c).multiplyScalar(0.5);
      b.mesh.scale.set(1, Math.max(len, 1e-6), 1);
      if (len > 1e-9) b.mesh.quaternion.setFromUnitVectors(view.unitY, d.divideScalar(len));
      b.mesh.material = this.kind(t, b.j);
    }
    for (const k of this.joints) {
      k.mesh.position.copy(at(k.j));
      k.mesh.material = this.kind(t, k.j);
    }
    let top = -Infinity;
    for (const j of this.sk.drawn) top = Math.max(top, P(j, 1));
    return { root: at(this.sk.root), top: new THREE.Vector3(root[0] + dx, top, root[2] + dz) };
  }
}

function rebuildFigures() {
  for (const f of view.figures) f.dispose();
  view.figures = [];
  if (!view.scene || !state.clip && !state.result) return;
  const sk = (state.clip || state.result).skeleton;
  const first = (state.clip || state.result.samples[0]).positions;
  let lo = Infinity, hi = -Infinity, floor = Infinity;
  for (const j of sk.drawn) { lo = Math.min(lo, first.at(0, j, 1)); hi = Math.max(hi, first.at(0, j, 1)); }
  for (let t = 0; t < first.frames; t++) for (const j of sk.drawn) floor = Math.min(floor, first.at(t, j, 1));
  view.height = Math.max(hi - lo, 1e-3);
  setGrid(view.height, floor);
  if (state.clip) {
    view.figures.push(new Figure(state.clip.skeleton, state.clip.positions, plannedObserved(), "input", "input"));
  }
  if (state.result) {
    const rows = state.result.observed;
    const observed = (t, j) => rows[Math.min(t, rows.length - 1)][j] === "1";
    state.result.samples.forEach((s, i) => {
      const m = state.models.find((x) => x.id === state.result.model);
      const name = m ? m.name : state.result.model;
      const title = state.result.samples.length > 1 ? `${name} · ${i + 1}` : name;
      view.figures.push(new Figure(state.result.skeleton, s.positions, observed, "result", title));
    });
  }
  frameCamera();
}

function frameCamera() {
  if (!view.camera) return;
  const n = view.figures.length;
  const h = view.height;
  const width = Math.max(1, n) * h * 0.8;
  const dist = Math.max(h * 2.6, width * 1.25);
  const c = layoutCentre();
  view.controls.target.copy(c);
  view.camera.position.set(c.x + dist * 0.3, c.y + h * 1.1, c.z + dist);
  view.controls.update();
}

function layoutCentre() {
  // The middle of the figures at the current frame, as laid out.
  const pts = placeFigures(false);
  if (!pts.length) return new THREE.Vector3(0, view.height * 0.55, 0);
  const c = new THREE.Vector3();
  for (const p of pts) c.add(p.root);
  return c.divideScalar(pts.length);
}

function placeFigures(draw = true) {
  const side = $("layout").value === "side";
  const spacing = view.height * 0.8;
  const out = [];
  view.figures.forEach((f, i) => {
    const offset = side ? (i - (view.figures.length - 1) / 2) * spacing : 0;
    out.push(f.update(state.frame, offset, side));
  });
  if (draw) {
    const rect = $("view").getBoundingClientRect();
    view.figures.forEach((f, i) => {
      const p = out[i].top.clone();
      p.y += view.height * 0.12;
      p.project(view.camera);
      const visible = side && p.z < 1 && Math.abs(p.x) < 1.1 && Math.abs(p.y) < 1.1;  // overlaid: no labels
      f.label.style.display = visible ? "" : "none";
      f.label.style.left = `${(p.x * 0.5 + 0.5) * rect.width}px`;
      f.label.style.top = `${(-p.y * 0.5 + 0.5) * rect.height}px`;
    });
  }
  return out;
}

function render() {
  if (!view.renderer) return;
  const pts = placeFigures(true);
  if ($("follow").checked && pts.length && $("layout").value === "overlay") {
    const c = new THREE.Vector3();
    for (const p of pts) c.add(p.root);
    c.divideScalar(pts.length);
    const delta = c.sub(view.controls.target).multiplyScalar(0.15);
    view.controls.target.add(delta);
    view.camera.position.add(delta);
  }
  view.controls.update();
  view.renderer.render(view.scene, view.camera);
}

// ---- timeline and playback ----------------------------------------------------------------------------------------
function totalFrames() {
  return Math.max(state.clip ? state.clip.frames : 0, state.result ? state.result.frames : 0);
}

function fps() { return (state.result || state.clip || { fps: 30 }).fps; }

function setFrame(t) {
  const T = totalFrames();
  state.frame = T ? Math.max(0, Math.min(T - 1, Math.round(t))) : 0;
  $("frame-label").textContent = T ? `${state.frame} / ${T - 1}` : "0 / 0";
  drawTimeline();
}

function frameAt(x) {
  const canvas = $("timeline");
  const T = totalFrames();
  const rect = canvas.getBoundingClientRect();
  const pad = 8;
  return Math.round(((x - rect.left - pad) / Math.max(1, rect.width - 2 * pad)) * Math.max(0, T - 1));
}

function drawTimeline() {
  const canvas = $("timeline");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const T = totalFrames();
  const pad = 8, y0 = 6, y1 = h - 16;
  g.fillStyle = "#eef1f8";
  g.fillRect(pad, y0, w - 2 * pad, y1 - y0);
  if (!T) return;
  const x = (t) => pad + (T > 1 ? t / (T - 1) : 0) * (w - 2 * pad);
  // the planned observation: whole frames shaded grey where observed, a lighter band where partly observed
  const observed = plannedObserved();
  const J = state.clip ? state.clip.skeleton.names.length : 0;
  for (let t = 0; t < T && J; t++) {
    let n = 0;
    for (let j = 0; j < J; j++) if (observed(t, j)) n++;
    if (!n) continue;
    g.fillStyle = n === J ? "#9a9a9a" : "#cfcfcf";
    g.fillRect(x(t) - 0.5, y0, Math.max(1, x(t + 1) - x(t)), y1 - y0);
  }
  // ticks
  g.fillStyle = "#6b7190";
  g.font = "10px system-ui, sans-serif";
  const step = [1, 5, 10, 30, 60, 100, 300, 600, 1000, 3000].find((s) => (w - 2 * pad) * s / T > 40) || 10000;
  for (let t = 0; t < T; t += step) {
    g.fillRect(x(t), y1, 1, 4);
    g.fillText(String(t), x(t) + 2, h - 3);
  }
  // keyframes
  if ($("task").value === "inbetween") {
    g.fillStyle = "#1e2446";
    for (const k of state.keyframes) {
      const cx = x(k), cy = (y0 + y1) / 2;
      g.beginPath();
      g.moveTo(cx, cy - 7); g.lineTo(cx + 5, cy); g.lineTo(cx, cy + 7); g.lineTo(cx - 5, cy);
      g.closePath();
      g.fill();
    }
  }
  // cursor
  g.fillStyle = "#6a3d9a";
  g.fillRect(x(state.frame) - 1, 2, 2, y1 - 2);
}

function initTimeline() {
  const canvas = $("timeline");
  let down = null;
  canvas.addEventListener("pointerdown", (e) => {
    if (!totalFrames()) return;
    canvas.setPointerCapture(e.pointerId);
    down = { x: e.clientX, moved: false };
    setFrame(frameAt(e.clientX));
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!down) return;
    if (Math.abs(e.clientX - down.x) > 3) down.moved = true;
    setFrame(frameAt(e.clientX));
  });
  canvas.addEventListener("pointerup", (e) => {
    if (!down) return;
    const click = !down.moved;
    down = null;
    if (click && $("task").value === "inbetween" && state.clip) {
      const t = Math.min(frameAt(e.clientX), state.clip.frames - 1);
      if (state.keyframes.has(t)) state.keyframes.delete(t); else state.keyframes.add(t);
      planChanged();
    }
  });
  new ResizeObserver(drawTimeline).observe(canvas);
}

function togglePlay(on = !state.playing) {
  state.playing = on && totalFrames() > 1;
  state.playStart = performance.now();
  state.playFrame0 = state.frame;
  $("play").textContent = state.playing ? "❚❚" : "▶";
}

function tick(now) {
  if (state.playing) {
    const T = totalFrames();
    const t = state.playFrame0 + ((now - state.playStart) / 1000) * fps();
    setFrame(T ? Math.floor(t) % T : 0);
  }
  render();
  requestAnimationFrame(tick);
}

// ---- the task being built -----------------------------------------------------------------------------------------
function synthesisedJoints() {
  const out = new Set();
  if (!state.clip) return out;
  for (const box of document.querySelectorAll("#parts input:checked")) {
    for (const j of state.clip.skeleton.groups[box.value] || []) out.add(j);
  }
  return out;
}

function plannedObserved() {
  // (t, j) => whether the task as set up now keeps joint j at frame t of the input.
  const task = $("task").value;
  if (!state.clip) return () => false;
  if (task === "inbetween") { const k = state.keyframes; return (t) => k.has(t); }
  if (task === "complete") { const s = synthesisedJoints(); return (t, j) => !s.has(j); }
  if (task === "predict") { const n = Number($("given").value) || 0; return (t) => t < n; }
  if (task === "denoise") return () => true;
  return () => false;
}

function planChanged() {
  const keys = [...state.keyframes].sort((a, b) => a - b);
  $("keyframes").textContent = keys.length ? `Keyframes: ${keys.join(", ")}` : "No keyframes: click the timeline.";
  if (view.figures.length && view.figures[0].role === "input") view.figures[0].observed = plannedObserved();
  drawTimeline();
}

function onTaskChanged() {
  const task = $("task").value;
  for (const el of document.querySelectorAll(".task-opt")) el.hidden = el.dataset.task !== task;
  fillModels();
  planChanged();
}

function fillModels() {
  const task = $("task").value;
  const select = $("model");
  const before = select.value;
  select.innerHTML = "";
  const fits = state.clip ? new Set(state.clip.models) : null;
  for (const m of state.models) {
    if (!m.tasks.includes(task)) continue;
    const option = new Option(m.kind === "baseline" ? `${m.name} (baseline)` : `${m.name} · ${m.family}`, m.id);
    option.title = m.id;
    if (task !== "generate" && fits && !fits.has(m.id)) {
      option.disabled = true;
      option.text += " — other skeleton";
    }
    select.add(option);
  }
  const usable = [...select.options].filter((o) => !o.disabled);
  if (usable.some((o) => o.value === before)) select.value = before;
  else if (usable.length) select.value = usable[0].value;
  onModelChanged();
}

function currentModel() { return state.models.find((m) => m.id === $("model").value); }

function onModelChanged() {
  const m = currentModel();
  $("model-info").textContent = m ? (m.kind === "checkpoint" ? `${m.id}: ${m.summary}` : m.summary)
    : "No model for this task.";
  const labels = $("labels");
  labels.innerHTML = "";
  if (m && m.labels) {
    for (const [kind, names] of Object.entries(m.labels)) {
      const row = document.createElement("div");
      row.className = "row";
      const select = document.createElement("select");
      select.dataset.kind = kind;
      select.setAttribute("aria-label", kind);
      select.add(new Option(`${kind}: any`, ""));
      for (const n of names) select.add(new Option(`${kind}: ${n}`, n));
      row.appendChild(select);
      labels.appendChild(row);
    }
  }
  if (m && m.window && !$("gen-frames").value) $("gen-frames").value = m.window;
  $("samples").disabled = $("task").value === "denoise";
  updateRunButton();
}

function updateRunButton() {
  const task = $("task").value;
  $("run").disabled = state.busy || !currentModel() || (task !== "generate" && !state.clip);
}

function buildRequest() {
  const task = $("task").value;
  const req = { task, model: $("model").value, samples: Number($("samples").value) || 1,
    seed: Number($("seed").value) || 0 };
  if (task !== "generate") req.upload = state.clip.id;
  if (task === "inbetween") req.keyframes = [...state.keyframes].sort((a, b) => a - b);
  if (task === "complete") {
    const syn = synthesisedJoints();
    if (!syn.size) throw new Error("pick at least one body part to synthesise");
    req.observe = state.clip.skeleton.names.map((_, j) => j).filter((j) => !syn.has(j));
  }
  if (task === "predict") {
    req.given = Number($("given").value);
    if ($("predict-frames").value) req.frames = Number($("predict-frames").value);
  }
  if (task === "generate") {
    if ($("gen-frames").value) req.frames = Number($("gen-frames").value);
    const label = {};
    for (const s of document.querySelectorAll("#labels select")) if (s.value) label[s.dataset.kind] = s.value;
    if (Object.keys(label).length) req.label = label;
  }
  return req;
}

async function run() {
  let req;
  try {
    req = buildRequest();
  } catch (e) {
    setStatus(e.message, "error");
    return;
  }
  state.busy = true;
  updateRunButton();
  setStatus(`Running ${state.tasks[req.task] || req.task} with ${req.model}…`, "busy");
  try {
    const result = await api("/api/run", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(req) });
    for (const s of result.samples) s.positions = decodePositions(s.positions);
    state.result = result;
    showResult();
    setStatus(`Done in ${result.seconds.toFixed(2)} s: ${result.samples.length} sample` +
      `${result.samples.length > 1 ? "s" : ""} of ${result.frames} frames.`);
  } catch (e) {
    setStatus(e.message, "error");
  } finally {
    state.busy = false;
    updateRunButton();
  }
}

function showResult() {
  const r = state.result;
  $("result-section").hidden = false;
  const m = state.models.find((x) => x.id === r.model);
  $("result-info").textContent = `${state.tasks[r.task] || r.task} · ${m ? m.name : r.model} · ${r.frames} frames`;
  const list = $("downloads");
  list.innerHTML = "";
  r.samples.forEach((s, i) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = s.url;
    a.download = s.download;
    a.textContent = r.samples.length > 1 ? `sample ${i + 1} — BVH` : "result — BVH";
    a.title = s.download;
    a.className = "download";
    li.appendChild(a);
    list.appendChild(li);
  });
  rebuildFigures();
  setFrame(state.frame);
  togglePlay(true);
}

// ---- the clip -----------------------------------------------------------------------------------------------------
async function upload(file) {
  if (!file) return;
  if (state.maxUpload && file.size > state.maxUpload) {
    setStatus(`${file.name} is ${(file.size / 1048576).toFixed(1)} MiB: larger than the limit of ` +
      `${(state.maxUpload / 1048576).toFixed(1)} MiB`, "error");
    return;
  }
  setStatus(`Uploading ${file.name}…`, "busy");
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const clip = await api("/api/upload", { method: "POST", body: form });
    clip.positions = decodePositions(clip.positions);
    state.clip = clip;
    state.result = null;
    $("result-section").hidden = true;
    $("clip-info").textContent = `${clip.filename}: ${clip.frames} frames at ${clip.fps} fps, ` +
      `${clip.skeleton.names.length} joints`;
    setKeyframes(30);
    $("given").value = Math.max(1, Math.min(clip.frames - 1, Math.round(clip.frames / 2)));
    $("given").max = clip.frames;
    $("predict-frames").value = clip.frames;
    fillParts(clip.skeleton.groups);
    rebuildFigures();
    setFrame(0);
    fillModels();
    planChanged();
    togglePlay(true);
    setStatus(`Loaded ${clip.filename}.`);
  } catch (e) {
    setStatus(e.message, "error");
  } finally {
    $("file").value = "";
  }
}

function setKeyframes(every) {
  state.keyframes = new Set();
  if (!state.clip) return;
  const T = state.clip.frames;
  for (let t = 0; t < T; t += Math.max(1, every)) state.keyframes.add(t);
  state.keyframes.add(T - 1);
  planChanged();
}

function fillParts(groups) {
  const box = $("parts");
  box.innerHTML = "";
  for (const name of Object.keys(groups)) {
    if (!groups[name].length) continue;
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.value = name;
    input.checked = name === "lower";
    input.addEventListener("change", planChanged);
    label.append(input, ` ${PART_NAMES[name] || name.replace(/_/g, " ")}`);
    box.appendChild(label);
  }
}

// ---- start --------------------------------------------------------------------------------------------------------
async function main() {
  initView();
  initTimeline();
  $("file").addEventListener("change", (e) => upload(e.target.files[0]));
  $("task").addEventListener("change", onTaskChanged);
  $("model").addEventListener("change", onModelChanged);
  $("run").addEventListener("click", run);
  $("play").addEventListener("click", () => togglePlay());
  $("key-fill").addEventListener("click", () => setKeyframes(Number($("key-every").value) || 30));
  $("key-clear").addEventListener("click", () => { state.keyframes = new Set(); planChanged(); });
  $("given").addEventListener("input", planChanged);
  $("given-cursor").addEventListener("click", () => { $("given").value = Math.max(1, state.frame); planChanged(); });
  $("layout").addEventListener("change", frameCamera);
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    if (e.code === "Space") { e.preventDefault(); togglePlay(); }
    if (e.code === "ArrowRight") { togglePlay(false); setFrame(state.frame + 1); }
    if (e.code === "ArrowLeft") { togglePlay(false); setFrame(state.frame - 1); }
  });
  try {
    const info = await api("/api/models");
    state.models = info.models;
    state.tasks = info.tasks;
    state.maxUpload = info.max_upload_bytes;
    state.maxSamples = info.max_samples;
    $("samples").max = info.max_samples;
    for (const [id, title] of Object.entries(info.tasks)) $("task").add(new Option(title, id));
    onTaskChanged();
    setStatus("Load a BVH clip to start.");
  } catch (e) {
    setStatus(e.message, "error");
  }
  document.body.dataset.ready = "1";
  requestAnimationFrame(tick);
}

main();

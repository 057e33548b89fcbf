// motionsynth editor: upload a BVH, build a task (keyframes on the timeline, body parts, prefix, label), run a model
// through the JSON API (/api/...), animate input and result as 3D stick figures (three.js), download the result (BVH,
// glTF).
// Colours follow `motionsynth render`: observed parts grey, synthesised parts coloured by side.
// A run is a job on the server: the page follows it (progress, time left, Cancel) and lists this session's requests.
// The model list shows only the models that serve the chosen task; the others are named with what they do instead.
// The 3D view is drawn only when something changed (playing, scrubbing, the camera, a new result), never while idle.
import * as THREE from "three";
import { OrbitControls } from "/static/vendor/OrbitControls.js";

const $ = (id) => document.getElementById(id);
const SIDE = { left: 0xe4572e, right: 0x1f77b4, centre: 0x6a3d9a };
const OBS = { left: 0xa5a5a5, right: 0x787878, centre: 0x8c8c8c };
const GHOST = 0xc9cdd8;

const POLL_MS = 400;  // how often a running job is asked where it stands

const state = {
  models: [], tasks: {}, maxUpload: 0, maxSamples: 16,
  clip: null,        // the upload: {id, name, frames, fps, skeleton, positions (decoded), models}
  result: null,      // the result shown: {id, task, model, frames, fps, skeleton, observed, samples}
  job: null,         // the job this page follows now: {id, state, progress, eta, …}
  keyframes: new Set(),
  frame: 0, playing: false, playStart: 0, playFrame0: 0,
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
  unitY: new THREE.Vector3(0, 1, 0), tmp: new THREE.Vector3(), target: new THREE.Vector3(),
  dirty: true, renders: 0 };

// Ask for one redraw at the next animation frame (the loop draws nothing otherwise).
function requestRender() { view.dirty = true; }

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
  view.controls.addEventListener("change", requestRender);
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
  requestRender();
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

// The input is shown beside the result for every task but generation (which does not read it).
function showsInput() { return !!state.clip && $("task").value !== "generate"; }

// What sizes the view: the input when shown, else the result's first sample.
function sizingMotion() {
  if (showsInput()) return { skeleton: state.clip.skeleton, positions: state.clip.positions };
  if (state.result) return { skeleton: state.result.skeleton, positions: state.result.samples[0].positions };
  return null;
}

function rebuildFigures() {
  for (const f of view.figures) f.dispose();
  view.figures = [];
  requestRender();
  const ref = sizingMotion();
  if (!view.scene || !ref) return;
  const sk = ref.skeleton, first = ref.positions;
  let lo = Infinity, hi = -Infinity, floor = Infinity;
  for (const j of sk.drawn) { lo = Math.min(lo, first.at(0, j, 1)); hi = Math.max(hi, first.at(0, j, 1)); }
  for (let t = 0; t < first.frames; t++) for (const j of sk.drawn) floor = Math.min(floor, first.at(t, j, 1));
  view.height = Math.max(hi - lo, 1e-3);
  setGrid(view.height, floor);
  if (showsInput()) {
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
  requestRender();
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
    if (delta.length() > view.height * 1e-3) requestRender();  // still easing towards the figures
  }
  view.controls.update();
  view.renderer.render(view.scene, view.camera);
  view.renders += 1;
  document.body.dataset.renders = String(view.renders);  // (the browser test checks that idle means no redraw)
}

// ---- timeline and playback ----------------------------------------------------------------------------------------
function totalFrames() {
  return Math.max(showsInput() ? state.clip.frames : 0, state.result ? state.result.frames : 0);
}

function fps() { return (state.result || state.clip || { fps: 30 }).fps; }

function setFrame(t) {
  const T = totalFrames();
  state.frame = T ? Math.max(0, Math.min(T - 1, Math.round(t))) : 0;
  $("frame-label").textContent = T ? `${state.frame} / ${T - 1}` : "0 / 0";
  drawTimeline();
  requestRender();
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
    const frame = T ? Math.floor(t) % T : 0;
    if (frame !== state.frame) setFrame(frame);
  }
  if (view.dirty) {
    view.dirty = false;
    render();
  }
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

function rootPath(sk) {
  // the moving root and its ancestors: what keeps the root's position and heading (`tasks.observe_root`)
  const out = [];
  for (let j = sk.root; j >= 0; j = sk.parents[j]) out.push(j);
  return out;
}

function plannedObserved() {
  // (t, j) => whether the task as set up now keeps joint j at frame t of the input.
  const task = $("task").value;
  if (!state.clip) return () => false;
  if (task === "inbetween") { const k = state.keyframes; return (t) => k.has(t); }
  if (task === "complete") {
    const s = synthesisedJoints();
    const sk = state.clip.skeleton;
    const kept = new Set($("synthesise-root").checked ? [] : rootPath(sk));  // the root path is kept by default
    return (t, j) => kept.has(j) || !s.has(j);
  }
  if (task === "predict") { const n = Number($("given").value) || 0; return (t) => t < n; }
  if (task === "denoise") return () => true;
  return () => false;
}

function planChanged() {
  const keys = [...state.keyframes].sort((a, b) => a - b);
  $("keyframes").textContent = keys.length ? `Keyframes: ${keys.join(", ")}` : "No keyframes: click the timeline.";
  if (view.figures.length && view.figures[0].role === "input") view.figures[0].observed = plannedObserved();
  drawTimeline();
  requestRender();
}

function onTaskChanged() {
  const task = $("task").value;
  for (const el of document.querySelectorAll(".task-opt")) el.hidden = el.dataset.task !== task;
  if (state.result && state.result.task !== task) {  // (it stays in the request log)
    clearResult();
    setStatus("");
  }
  fillModels();
  rebuildFigures();
  setFrame(state.frame);
  planChanged();
}

// A task in words, for sentences: "in-betweening", "denoising", … (its title without the detail in brackets).
function taskWord(task) { return (state.tasks[task] || task).split(" (")[0].toLowerCase(); }

function modelTitle(m) { return m.kind === "baseline" ? `${m.name} (baseline)` : `${m.name} · ${m.family}`; }

// The model list offers the models that serve the task (disabled: another skeleton than the clip's); the note under
// it names those that do not, and says so plainly when the model chosen before cannot do the new task.
function fillModels() {
  const task = $("task").value;
  const select = $("model");
  const before = currentModel();
  select.innerHTML = "";
  const fits = state.clip ? new Set(state.clip.models) : null;
  for (const m of state.models.filter((x) => x.tasks.includes(task))) {
    const option = new Option(modelTitle(m), m.id);
    option.title = m.id;
    if (task !== "generate" && fits && !fits.has(m.id)) {
      option.disabled = true;
      option.text += " — other skeleton";
    }
    select.add(option);
  }
  const usable = [...select.options].filter((o) => !o.disabled);
  if (before && usable.some((o) => o.value === before.id)) select.value = before.id;
  else if (usable.length) select.value = usable[0].value;
  showModelNote(task, before);
  onModelChanged();
}

function showModelNote(task, before) {
  const word = taskWord(task);
  const doing = (m) => m.tasks.map(taskWord).join(", ") || "nothing here";
  const notFor = (list) => (list.length ? `Not for ${word}: ` +
    list.map((m) => `${m.name} (${doing(m)} only)`).join("; ") + "." : "");
  const others = state.models.filter((m) => m.kind === "checkpoint" && !m.tasks.includes(task));
  const now = currentModel();
  let text = notFor(others), refused = false;
  if (before && !before.tasks.includes(task)) {
    refused = true;
    text = `${before.name} cannot do ${word}: it does ${doing(before)}.` +
      (now ? ` Switched to ${now.name}; the list shows the models that can.` : "") +
      ` ${notFor(others.filter((m) => m !== before))}`;
  }
  if (!now) {
    refused = true;
    const hint = task === "generate" ? ": baselines cannot generate; start the editor with a learned model " +
      "(motionsynth serve with no --model offers the shipped ones)" : "";
    text = `No model offered here can do ${word}${hint}. ${notFor(others)}`;
  }
  const note = $("model-note");
  note.textContent = text.trim();
  note.hidden = !text.trim();
  note.className = refused ? "note refused" : "note";
}

function currentModel() { return state.models.find((m) => m.id === $("model").value); }

function onModelChanged() {
  const m = currentModel();
  $("model-info").textContent = m ? m.summary : "No model for this task.";
  $("model-info").title = m ? m.id : "";
  const licence = $("model-licence");
  licence.hidden = !(m && m.licence);
  if (m && m.licence) {
    licence.textContent = `Licence: ${m.licence}`;
    licence.title = m.licence_text || "";
  }
  fillLabels(m);
  if (m && m.window && !$("gen-frames").value) $("gen-frames").value = m.window;
  $("samples").disabled = $("task").value === "denoise";
  updateRunButton();
}

// Label pickers only for a model that takes labels (its vocabulary: kind → names); none for one that refuses them.
function fillLabels(m) {
  const labels = $("labels");
  labels.innerHTML = "";
  const kinds = m && m.labels ? Object.entries(m.labels) : [];
  labels.hidden = !kinds.length;
  if (kinds.length) {
    for (const [kind, names] of kinds) {
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
}

function jobActive() { return !!state.job && ["queued", "running"].includes(state.job.state); }

function updateRunButton() {
  const task = $("task").value;
  $("run").disabled = jobActive() || !currentModel() || (task !== "generate" && !state.clip);
}

function buildRequest() {
  const task = $("task").value;
  const req = { task, model: $("model").value, samples: Number($("samples").value) || 1,
    seed: Number($("seed").value) || 0 };
  if (task !== "generate") req.upload = state.clip.id;
  if (task === "inbetween") {
    req.keyframes = [...state.keyframes].sort((a, b) => a - b);
    if ($("extrapolate").checked) req.extrapolate = true;
  }
  if (task === "complete") {
    const syn = synthesisedJoints();
    if (!syn.size) throw new Error("pick at least one body part to synthesise");
    req.observe = state.clip.skeleton.names.map((_, j) => j).filter((j) => !syn.has(j));
    if ($("synthesise-root").checked) req.synthesise_root = true;
  }
  if (task === "predict") {
    req.given = Number($("given").value);
    if ($("predict-frames").value) req.frames = Number($("predict-frames").value);
  }
  if (task === "generate" && $("gen-frames").value) req.frames = Number($("gen-frames").value);
  const label = {};
  for (const s of document.querySelectorAll("#labels select")) if (s.value) label[s.dataset.kind] = s.value;
  if (Object.keys(label).length) req.label = label;
  return req;
}

// ---- jobs: a run is queued on the server and followed until it ends ----------------------------------------------
async function run() {
  let req;
  try {
    req = buildRequest();
  } catch (e) {
    setStatus(e.message, "error");
    return;
  }
  clearResult();  // a new request: the last result would be stale (the request log keeps it)
  showModelNote(req.task, null);  // a note that the model was switched has been read
  const entry = addLog(req);
  setStatus("");
  try {
    const job = await api("/api/run", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(req) });
    entry.id = job.id;
    await followJob(job, entry);
  } catch (e) {  // refused before any work (a 4xx) or busy (503)
    setStatus(e.message, "error");
    updateLog(entry, { state: "refused", error: e.message });
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function followJob(job, entry) {
  state.job = job;
  showJob(job, entry);
  while (jobActive()) {
    await sleep(POLL_MS);
    try {
      state.job = await api(`/api/jobs/${job.id}`);
    } catch (e) {
      state.job = { ...state.job, state: "failed", error: e.message };
    }
    showJob(state.job, entry);
  }
  finishJob(state.job, entry);
}

function showJob(job, entry) {
  const active = jobActive();
  $("job").hidden = !active;
  $("job-title").textContent = `${entry.task[0].toUpperCase()}${entry.task.slice(1)} with ${entry.model}`;
  const bar = $("job-progress");
  if (job.state === "running" && job.progress > 0) bar.value = job.progress;
  else bar.removeAttribute("value");  // indeterminate: queued, or a method that reports no progress
  $("job-text").textContent = jobText(job);
  $("cancel").disabled = !active || job.cancel_requested;
  updateLog(entry, job);
  updateRunButton();
}

function jobText(job) {
  if (job.cancel_requested && job.state === "running") return "Cancelling at the model's next step…";
  if (job.state === "queued") {
    return job.ahead ? `Queued behind ${job.ahead} job${job.ahead > 1 ? "s" : ""}…` : "Queued…";
  }
  if (job.state !== "running") return "";
  const spent = `running for ${duration(job.running_seconds)}`;
  if (!(job.progress > 0)) return `Running ${taskWord(job.task)}: ${spent}`;
  const left = job.eta == null ? "" : `, about ${duration(job.eta)} left`;
  return `${Math.floor(job.progress * 100)} % · ${spent}${left}`;
}

function duration(seconds) {
  if (seconds < 9.95) return `${Math.max(0, seconds).toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function finishJob(job, entry) {
  state.job = null;
  $("job").hidden = true;
  updateRunButton();
  if (job.state === "done") {
    entry.result = job.result;
    showRunResult(job.result);
    setStatus(`Done in ${duration(job.seconds)}: ${job.result.samples.length} sample` +
      `${job.result.samples.length > 1 ? "s" : ""} of ${job.result.frames} frames.`);
  } else if (job.state === "cancelled") {
    setStatus("Cancelled: nothing was kept.");
  } else {
    clearResult();
    setStatus(job.error || "the run failed", "error");
  }
}

async function cancelJob() {
  const job = state.job;
  if (!job) return;
  $("cancel").disabled = true;
  try {
    const now = await api(`/api/jobs/${job.id}/cancel`, { method: "POST" });
    if (state.job && state.job.id === now.id) state.job = now;
    $("job-text").textContent = jobText(now);
  } catch (e) {
    setStatus(e.message, "error");
  }
}

function showRunResult(result) {
  for (const s of result.samples) if (s.positions.dtype) s.positions = decodePositions(s.positions);  // once
  state.result = result;
  showResult();
}

// ---- the request log: this page's requests, newest first ---------------------------------------------------------
function addLog(req) {
  const m = state.models.find((x) => x.id === req.model);
  const entry = { req, id: null, result: null, li: document.createElement("li"),
    time: new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }),
    task: taskWord(req.task), model: m ? m.name : req.model };
  $("log").prepend(entry.li);
  $("log-section").hidden = false;
  updateLog(entry, { state: "sending" });
  return entry;
}

function updateLog(entry, job) {
  const li = entry.li;
  li.className = `log-${job.state}`;
  li.title = job.error || "";
  const ended = job.seconds != null && !["queued", "running"].includes(job.state);
  const seconds = ended ? ` · ${duration(job.seconds)}` : "";
  const progress = job.state === "running" && job.progress > 0 ? ` ${Math.floor(job.progress * 100)} %` : "";
  li.textContent = `${entry.time} ${entry.task} · ${entry.model} · ${job.state}${progress}${seconds}`;
  if (job.state === "done") {
    const show = document.createElement("button");
    show.type = "button";
    show.className = "link";
    show.textContent = "show";
    show.addEventListener("click", () => showLogged(entry));
    li.append(" ", show);
  }
}

function showLogged(entry) {
  const { req, result } = entry;
  if (!result) return;
  if (req.upload && (!state.clip || state.clip.id !== req.upload)) {
    setStatus("That result is of another clip than the one loaded now.", "error");
    return;
  }
  if ($("task").value !== result.task) {
    $("task").value = result.task;
    onTaskChanged();
  }
  if ([...$("model").options].some((o) => o.value === result.model && !o.disabled)) {
    $("model").value = result.model;
    onModelChanged();
  }
  showModelNote(result.task, null);
  showRunResult(result);
  setStatus(`Showing the ${entry.time} result.`);
}

function clearResult() {
  if (!state.result) return;
  state.result = null;
  $("result-section").hidden = true;
  rebuildFigures();
  setFrame(state.frame);
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
    if (s.glb_url) {  // the same motion as a glTF 2.0 binary (a skinned, animated character)
      const g = document.createElement("a");
      g.href = s.glb_url;
      g.download = s.glb_download;
      g.textContent = "glTF";
      g.title = s.glb_download;
      g.className = "download-glb";
      li.append(" · ", g);
    }
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
    fillParts(clip.skeleton.groups, clip.skeleton.part_names);
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

function fillParts(groups, names) {
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
    label.append(input, ` ${(names || {})[name] || name.replace(/_/g, " ")}`);  // the names --observe reads
    box.appendChild(label);
  }
}

// ---- start --------------------------------------------------------------------------------------------------------
async function main() {
  initView();
  initTimeline();
  $("file").addEventListener("change", (e) => upload(e.target.files[0]));
  $("task").addEventListener("change", onTaskChanged);
  $("model").addEventListener("change", () => { showModelNote($("task").value, null); onModelChanged(); });
  $("run").addEventListener("click", run);
  $("cancel").addEventListener("click", cancelJob);
  $("follow").addEventListener("change", requestRender);
  $("play").addEventListener("click", () => togglePlay());
  $("key-fill").addEventListener("click", () => setKeyframes(Number($("key-every").value) || 30));
  $("key-clear").addEventListener("click", () => { state.keyframes = new Set(); planChanged(); });
  $("given").addEventListener("input", planChanged);
  $("synthesise-root").addEventListener("change", planChanged);
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

// The dcman dashboard: logs in at /v3, keeps the token in sessionStorage, and polls the /v1.0
// API. Everything is drawn with textContent, never innerHTML, so no stored value can inject markup.
"use strict";

const TOKEN_KEY = "dcman.token";
const ROLE_KEY = "dcman.role";
const PAGE_SIZE = 50;
const query = new URLSearchParams(location.search);
const REFRESH_MS = Math.max(1, Number(query.get("refresh")) || 3) * 1000;

const state = { offset: 0, total: 0, selected: null, listSeq: 0, timer: null, groups: {}, peerGroups: {} };
const $ = (id) => document.getElementById(id);

// --- small helpers -------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "onclick") node.addEventListener("click", value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child === null || child === undefined ? "" : child);
  return node;
}

function stateText(value) {
  const text = value === null || value === undefined ? "—" : String(value);
  return el("span", { class: "state-" + text.replace(/[^a-z-]/gi, "") }, text);
}

function fillRows(tbody, rows, emptyText, columns) {
  tbody.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c)))));
  if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: String(columns) }, emptyText)));
}

function fillCounts(dl, counts, prefix) {
  dl.replaceChildren();
  for (const [key, n] of Object.entries(counts)) {
    dl.append(el("dt", {}, key), el("dd", { id: `${prefix}-${key}` }, String(n)));
  }
}

function base64(text) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

function say(text, isError) {
  const box = $("message");
  box.textContent = text;
  box.className = isError ? "message error" : "message";
}

// --- the API -------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { "X-Auth-Token": sessionStorage.getItem(TOKEN_KEY) || "", Accept: "application/json" };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch("/v1.0" + path, init);
  if (response.status === 401) {
    showLogin("Your session has ended; log in again.");
    throw new Error("Not logged in.");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!response.ok) {
    const fault = data && data.error_message && data.error_message.faultstring;
    throw new Error(fault || `The site answered ${response.status}.`);
  }
  return data;
}

async function login(user, password) {
  const body = { auth: {
    identity: { methods: ["password"], password: { user: { name: user, password, domain: { name: "Default" } } } },
    scope: { project: { name: "admin", domain: { name: "Default" } } } } };
  const response = await fetch("/v3/auth/tokens", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (response.status !== 201) {
    let fault = null;
    try { fault = (await response.json()).error.message; } catch (e) { fault = null; }  // Keystone's body
    throw new Error(fault || "The user name or password is wrong.");
  }
  const issued = await response.json();
  sessionStorage.setItem(TOKEN_KEY, response.headers.get("X-Subject-Token"));
  sessionStorage.setItem(ROLE_KEY, (issued.token.roles || []).map((r) => r.name).join(","));
}

// --- screens -------------------------------------------------------------------------------

function showLogin(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(state.timer);
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("login-user").focus();
}

function showApp() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  const admin = (sessionStorage.getItem(ROLE_KEY) || "").split(",").includes("admin");
  document.body.classList.toggle("reader", !admin);
  for (const button of document.querySelectorAll(".admin-only")) button.hidden = !admin;
  api("GET", "/system").then((site) => { $("site-name").textContent = site.name; }).catch(() => {});
  refresh();
}

function isAdmin() {
  return !document.body.classList.contains("reader");
}

// --- drawing -------------------------------------------------------------------------------

function drawDashboard(board) {
  const counts = board.subclouds;
  $("count-total").textContent = `(${counts.total})`;
  fillCounts($("counts-availability"), counts["availability-status"], "count-availability");
  fillCounts($("counts-management"), counts["management-state"], "count-management");
  fillCounts($("counts-deploy"), counts["deploy-status"], "count-deploy");
  fillCounts($("counts-alarms"), board.alarms, "count-alarms");

  const deploySelect = $("filter-deploy");
  const chosen = deploySelect.value;
  const known = new Set([...deploySelect.options].map((o) => o.value));
  for (const status of Object.keys(counts["deploy-status"])) {
    if (!known.has(status)) deploySelect.append(el("option", {}, status));
  }
  deploySelect.value = chosen;

  fillRows($("peers").tBodies[0], board.system_peers.map((p) => [
    p["peer-name"], stateText(p["availability-state"]), p["administrative-state"], String(p["heartbeat-failures"]),
    p["last-heartbeat"] ? `${p["last-heartbeat"]} UTC (${p["last-heartbeat-answered"] ? "answered" : "failed"})` : "—",
  ]), "No system peers.", 5);

  const peerGroupSelect = $("filter-peer-group");
  state.peerGroups = {};
  for (const g of board.subcloud_peer_groups) {
    state.peerGroups[g.id] = g.peer_group_name;
    if (![...peerGroupSelect.options].some((o) => o.value === String(g.id))) {
      peerGroupSelect.append(el("option", { value: String(g.id) }, g.peer_group_name));
    }
  }
  fillRows($("peer-groups").tBodies[0], board.subcloud_peer_groups.map((g) => {
    const members = g.subclouds;
    const assocs = el("ul", { class: "plain" }, ...g.associations.map((a) => el("li", {},
      `${a["peer-name"] || a["system-peer-id"]} (${a["association-type"]}): `, stateText(a["sync-status"]),
      a["sync-message"] ? ` — ${a["sync-message"]} ` : " ",
      isAdmin() ? el("button", { type: "button", class: "sync", "data-association": String(a.id),
        "aria-label": `Sync ${g.peer_group_name} to ${a["peer-name"]}`, onclick: () => syncAssociation(g, a) }, "Sync") : "")));
    const actions = isAdmin() ? el("button", { type: "button", class: "migrate", "aria-label": `Migrate ${g.peer_group_name}`,
      onclick: () => migrateGroup(g) }, "Migrate") : "";
    return [g.peer_group_name, String(g.group_priority),
      `${g.system_leader_name}${g["leader-is-this-site"] ? " (this site)" : ""}`, stateText(g.migration_status || "none"),
      `${members.total_subclouds} (${members.complete} complete, ${members.managed} managed, ${members.rehoming} rehoming, ${members.rehome_failed} failed)`,
      g.associations.length ? assocs : "—", actions];
  }), "No subcloud peer groups.", 7);
}

function listParams() {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(state.offset) });
  for (const [key, value] of new FormData($("filters"))) if (value) params.set(key, value);
  return params;
}

async function loadList() {
  const seq = ++state.listSeq;
  const data = await api("GET", "/subclouds?" + listParams());
  if (seq !== state.listSeq) return;  // a newer filter has been asked for meanwhile
  state.total = data.total;
  fillRows($("subclouds").tBodies[0], data.subclouds.map((s) => [
    el("button", { type: "button", class: "link open", onclick: () => openDetail(s.id) }, s.name),
    stateText(s["availability-status"]), stateText(s["management-state"]), stateText(s["deploy-status"]),
    stateText(s.sync_status), state.groups[s.group_id] || String(s.group_id),
    s.peer_group_id === null ? "—" : state.peerGroups[s.peer_group_id] || String(s.peer_group_id),
  ]), "No subcloud matches.", 7);
  const first = data.total ? state.offset + 1 : 0;
  $("list-range").textContent = `Showing ${first}–${state.offset + data.subclouds.length} of ${data.total}`;
  $("page-prev").disabled = state.offset === 0;
  $("page-next").disabled = state.offset + PAGE_SIZE >= data.total;
}

async function loadGroups() {
  const data = await api("GET", "/subcloud-groups");
  const select = $("filter-group");
  for (const g of data.subcloud_groups) {
    state.groups[g.id] = g.name;
    if (![...select.options].some((o) => o.value === String(g.id))) select.append(el("option", { value: String(g.id) }, g.name));
  }
}

async function loadAlarms() {
  const data = await api("GET", "/fault-alarms?limit=100");
  fillRows($("alarms").tBodies[0], data.alarms.map((a) => [
    stateText(a.severity), a.alarm_id, a.entity_instance_id, a.reason_text, a.timestamp]), "No active alarms.", 5);
  $("alarms-range").textContent = data.alarms.length >= 100 ? "The 100 newest alarms." : "";
}

async function loadDetail() {
  const id = state.selected;
  const [s, alarms] = await Promise.all([api("GET", `/subclouds/${id}/detail`), api("GET", `/fault-alarms?subcloud=${id}`)]);
  if (state.selected !== id) return;
  $("detail").hidden = false;
  $("detail-name").textContent = s.name;
  const fields = [["Region", s["region-name"]], ["Description", s.description], ["Location", s.location],
    ["Availability", stateText(s["availability-status"])], ["Management", stateText(s["management-state"])],
    ["Deploy status", stateText(s["deploy-status"])], ["Errors", s["error-description"]],
    ["Backup status", stateText(s["backup-status"])], ["Last backup", s["backup-datetime"]],
    ["Prestage status", stateText(s["prestage-status"])],
    ["Prestage versions", s["prestage-versions"]],
    ["Software version", s["software-version"]], ["Management start IP", s["management-start-ip"]],
    ["Group", state.groups[s.group_id] || String(s.group_id)],
    ["Peer group", s.peer_group_id === null ? "—" : state.peerGroups[s.peer_group_id] || String(s.peer_group_id)],
    ["OAM floating IP", s.oam_floating_ip], ["Updated", s["updated-at"] || s["created-at"]]];
  $("detail-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", {}, k),
    el("dd", { id: "detail-" + k.toLowerCase().replace(/[^a-z]+/g, "-") }, v === null || v === undefined ? "—" : v)]));
  const progress = s["deploy-progress"];
  $("detail-progress").value = progress || 0;
  $("detail-progress-text").textContent = progress === null || progress === undefined ? "no phase running" : `${progress}%`;
  fillRows($("detail-endpoints").tBodies[0], s.endpoint_sync_status.map((e) => [e.endpoint_type, stateText(e.sync_status)]),
    "No endpoints.", 2);
  fillRows($("detail-alarms").tBodies[0], alarms.alarms.map((a) => [stateText(a.severity), a.alarm_id, a.reason_text, a.timestamp]),
    "No active alarms.", 4);
  if (isAdmin()) {
    $("detail-manage").hidden = s["management-state"] === "managed";
    $("detail-unmanage").hidden = s["management-state"] !== "managed";
  }
}

// --- the refresh loop ----------------------------------------------------------------------

async function refresh() {
  clearTimeout(state.timer);
  try {
    if (!Object.keys(state.groups).length) await loadGroups();
    const board = await api("GET", "/dashboard");
    drawDashboard(board);
    await Promise.all([loadList(), loadAlarms(), state.selected === null ? null : loadDetail()]);
    $("status").textContent = "Updated " + new Date().toLocaleTimeString();
  } catch (error) {
    $("status").textContent = "Update failed: " + error.message;
  }
  if (sessionStorage.getItem(TOKEN_KEY)) state.timer = setTimeout(refresh, REFRESH_MS);
}

// --- actions, each after a confirmation ----------------------------------------------------

function confirmAction(title, text, withPassword) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-password-row").hidden = !withPassword;
  $("confirm-password").value = "";
  $("confirm-password").required = withPassword;
  return new Promise((resolve) => {
    const done = (ok) => {
      $("confirm-form").removeEventListener("submit", onSubmit);
      $("confirm-cancel").removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      dialog.close();
      resolve(ok ? { password: $("confirm-password").value } : null);
    };
    const onSubmit = (event) => { event.preventDefault(); done(true); };
    const onCancel = (event) => { event.preventDefault(); done(false); };
    $("confirm-form").addEventListener("submit", onSubmit);
    $("confirm-cancel").addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    (withPassword ? $("confirm-password") : $("confirm-ok")).focus();
  });
}

async function act(what, call) {
  try {
    await call();
    say(what, false);
  } catch (error) {
    say(error.message, true);
  }
  refresh();
}

async function setManagement(target) {
  const name = $("detail-name").textContent;
  const verb = target === "managed" ? "Manage" : "Unmanage";
  if (!await confirmAction(`${verb} ${name}?`, `${name} will become ${target}.`, false)) return;
  await act(`${name} is now ${target}.`, () => api("PATCH", `/subclouds/${state.selected}`, { "management-state": target }));
}

async function migrateGroup(group) {
  const answer = await confirmAction(`Migrate ${group.peer_group_name}?`,
    `The subclouds of ${group.peer_group_name} will be rehomed to this site.`, true);
  if (!answer) return;
  await act(`Migration of ${group.peer_group_name} started.`, () => api("PATCH",
    `/subcloud-peer-groups/${group.id}/migrate`, { sysadmin_password: base64(answer.password) }));
}

async function syncAssociation(group, association) {
  const peer = association["peer-name"] || association["system-peer-id"];
  if (!await confirmAction(`Sync ${group.peer_group_name}?`, `${group.peer_group_name} will be copied to ${peer} now.`, false)) return;
  await act(`Sync of ${group.peer_group_name} to ${peer} started.`, () => api("PATCH",
    `/peer-group-associations/${association.id}/sync`));
}

async function openDetail(id) {
  state.selected = id;
  try {
    await loadDetail();
    $("detail").scrollIntoView({ block: "nearest" });
    $("detail-title").focus();
  } catch (error) {
    say(error.message, true);
  }
}

// --- wiring --------------------------------------------------------------------------------

let filterDelay = null;
function filtersChanged() {
  clearTimeout(filterDelay);
  filterDelay = setTimeout(() => { state.offset = 0; loadList().catch((e) => say(e.message, true)); }, 250);
}

document.addEventListener("DOMContentLoaded", () => {
  $("detail-title").tabIndex = -1;
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await login($("login-user").value, $("login-password").value);
      $("login-password").value = "";
      showApp();
    } catch (error) {
      $("login-error").textContent = error.message;
    }
  });
  $("logout").addEventListener("click", async () => {
    const token = sessionStorage.getItem(TOKEN_KEY);
    showLogin("");
    await fetch("/v3/auth/tokens", { method: "DELETE", headers: { "X-Auth-Token": token, "X-Subject-Token": token } });
  });
  $("filters").addEventListener("input", filtersChanged);
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); filtersChanged(); });
  $("page-prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); loadList(); });
  $("page-next").addEventListener("click", () => { state.offset += PAGE_SIZE; loadList(); });
  $("detail-close").addEventListener("click", () => { state.selected = null; $("detail").hidden = true; });
  $("detail-manage").addEventListener("click", () => setManagement("managed"));
  $("detail-unmanage").addEventListener("click", () => setManagement("unmanaged"));
  if (sessionStorage.getItem(TOKEN_KEY)) showApp(); else showLogin("");
});

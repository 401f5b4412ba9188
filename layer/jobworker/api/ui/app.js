// The dashboard: a client of jobworker's public API, nothing private. Pages are hash routes
// (#/, #/jobs, #/job/ID, #/routes/ID, #/submit); every number on them comes from an API call.
"use strict";

(function () {
  // The API lives where the page does, minus /ui/ (a stage prefix, if any, is kept).
  const API = window.location.pathname.replace(/\/ui(\/.*)?$/, "");
  const PROGRESS = ["PENDING", "QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"];
  const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
  const view = document.getElementById("view");
  let config = { tile_url: null };
  let refreshTimer = null;

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `HTTP ${status}`);
      this.status = status;
      this.code = error.code;
      this.details = error.details || [];
    }
  }

  async function api(method, path, body) {
    const options = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    const response = await fetch(API + path, options);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: { message: text } }; }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // --- little DOM helpers ---------------------------------------------------------------
  function h(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const time = (value) => (value ? new Date(value).toLocaleString() : "");
  const short = (id) => String(id).slice(0, 8);
  const jobLink = (id) => h("a", { href: `#/job/${id}` }, h("code", {}, short(id)));
  const badge = (progress) => h("span", { class: `progress ${progress}` }, progress);

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "none";
    if (seconds < 0) return "not yet due";
    if (seconds < 90) return `${Math.round(seconds)} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }

  function table(headers, rows) {
    return h("table", {},
      h("thead", {}, h("tr", {}, headers.map(([label, cls]) => h("th", { class: cls }, label)))),
      h("tbody", {}, rows));
  }

  function notice(message, bad) {
    return h("div", { class: bad ? "notice bad" : "notice", role: bad ? "alert" : "status" },
             message);
  }

  function errorList(error) {
    const details = (error.details || []).filter((detail) => detail.field);
    return h("div", { class: "notice bad", role: "alert" },
      h("strong", {}, `${error.status}: ${error.message}`),
      details.length ? h("ul", { class: "field-errors" }, details.map((detail) =>
        h("li", { "data-field": detail.field }, h("code", {}, detail.field), ": ",
          detail.message || detail.type || "invalid"))) : null);
  }

  function show(...nodes) { view.replaceChildren(...nodes.flat()); }

  function later(fn, ms) { clearTimeout(refreshTimer); refreshTimer = setTimeout(fn, ms); }

  // --- overview ---------------------------------------------------------------------------
  async function overview() {
    const [stats, throughput, failures] = await Promise.all([
      api("GET", "/jobs/stats"), api("GET", "/jobs/throughput?minutes=60"),
      api("GET", "/jobs?progress=FAILED&limit=10"),
    ]);
    const cards = PROGRESS.map((progress) => h("a", {
      class: "card", href: `#/jobs?progress=${progress}`, "data-progress": progress,
      "data-count": stats.counts[progress] ?? 0,
    }, h("div", { class: "n" }, stats.counts[progress] ?? 0), h("div", { class: "label" }, progress)));
    cards.push(h("div", { class: "card", "data-oldest-queued": stats.oldest_queued_age_seconds ?? "" },
      h("div", { class: "n" }, age(stats.oldest_queued_age_seconds)),
      h("div", { class: "label" }, "oldest queued")));
    show(
      h("h1", {}, "Overview"), h("div", { class: "cards" }, cards),
      h("h2", {}, "Finished per minute, last hour"), chart(throughput),
      h("h2", {}, "Recent failures"),
      failures.jobs.length ? table([["Job"], ["Kind"], ["Finished"], ["Reason"]],
        failures.jobs.map((job) => h("tr", {}, h("td", {}, jobLink(job.job_id)), h("td", {}, job.kind),
          h("td", {}, time(job.finished_at)), h("td", { class: "error" }, job.error || ""))))
        : h("p", { class: "muted" }, "No failed jobs."),
    );
    later(() => route(), 5000);
  }

  function chart(throughput) {
    const width = 720, height = 120, minutes = 60;
    const since = new Date(throughput.since).getTime();
    const bars = throughput.minutes.map((row) => ({
      slot: Math.round((new Date(row.minute).getTime() - since) / 60000),
      done: row.completed, failed: row.failed + row.cancelled,
    }));
    const top = Math.max(1, ...bars.map((bar) => bar.done + bar.failed));
    const slot = width / minutes;
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "chart");
    svg.setAttribute("width", width);
    svg.setAttribute("height", height + 16);
    let total = 0;
    for (const bar of bars) {
      total += bar.done + bar.failed;
      const doneHeight = (bar.done / top) * height, failedHeight = (bar.failed / top) * height;
      for (const [cls, y, barHeight] of [["done", height - doneHeight, doneHeight],
                                         ["failed", height - doneHeight - failedHeight, failedHeight]]) {
        if (!barHeight) continue;
        const rect = document.createElementNS(svg.namespaceURI, "rect");
        Object.entries({ class: cls, x: bar.slot * slot + 1, y, width: slot - 2, height: barHeight })
          .forEach(([key, value]) => rect.setAttribute(key, value));
        const title = document.createElementNS(svg.namespaceURI, "title");
        title.textContent = `${bar.done} completed, ${bar.failed} failed or cancelled`;
        rect.appendChild(title);
        svg.appendChild(rect);
      }
    }
    const caption = document.createElementNS(svg.namespaceURI, "text");
    caption.setAttribute("y", height + 13);
    caption.setAttribute("font-size", 11);
    caption.textContent = `peak ${top}/min · ${total} in the hour`;
    svg.appendChild(caption);
    return h("div", { "data-finished-last-hour": total }, svg);
  }

  // --- jobs list --------------------------------------------------------------------------
  async function jobs(params) {
    const progress = params.get("progress") || "";
    const kind = params.get("kind") || "";
    const cursor = params.get("cursor") || "";
    const query = new URLSearchParams({ limit: "50" });
    if (progress) query.set("progress", progress);
    if (kind) query.set("kind", kind);
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", `/jobs?${query}`);
    const filters = h("form", { class: "filters", onsubmit: (event) => {
      event.preventDefault();
      const form = new FormData(event.target);
      const next = new URLSearchParams();
      for (const key of ["progress", "kind"]) if (form.get(key)) next.set(key, form.get(key));
      window.location.hash = `#/jobs?${next}`;
    } },
      h("select", { name: "progress", "aria-label": "progress" }, h("option", { value: "" }, "any progress"),
        PROGRESS.map((p) => h("option", { value: p, selected: p === progress }, p))),
      h("input", { name: "kind", placeholder: "kind", value: kind, "aria-label": "kind" }),
      h("button", { type: "submit" }, "Filter"));
    const rows = page.jobs.map((job) => h("tr", { "data-job-id": job.job_id },
      h("td", {}, jobLink(job.job_id)), h("td", {}, job.kind), h("td", {}, badge(job.progress)),
      h("td", { class: "num" }, `${job.attempts}/${job.max_attempts}`),
      h("td", {}, time(job.created_at)), h("td", {}, time(job.finished_at)),
      h("td", { class: "error" }, job.error || "")));
    const nav = h("div", { class: "actions" });
    if (cursor) {  // the API's cursor goes one way (older): back to the first page, by link
      const first = new URLSearchParams(params);
      first.delete("cursor");
      nav.append(h("a", { href: `#/jobs?${first}`, class: "first-page" }, "← Newest"));
    }
    if (page.next_cursor) {
      const next = new URLSearchParams(params);
      next.set("cursor", page.next_cursor);
      nav.append(h("a", { href: `#/jobs?${next}`, class: "next-page" }, "Older →"));
    }
    show(h("h1", {}, "Jobs"), filters,
      rows.length ? table([["Job"], ["Kind"], ["Progress"], ["Attempts", "num"], ["Created"],
                           ["Finished"], ["Error"]], rows) : h("p", { class: "muted" }, "No jobs."),
      nav);
  }

  // --- one job ----------------------------------------------------------------------------
  async function job(id) {
    const [found, asked] = await Promise.all([
      api("GET", `/jobs/${id}`), api("GET", `/jobs/${id}/payload`)]);
    const message = h("div", { id: "action-result" });
    const act = (action) => async () => {
      try {
        const answer = await api("POST", `/jobs/${id}/${action}`);
        message.replaceChildren(notice(`${action}: the job is now ${answer.progress}`));
        later(() => route(), 600);
      } catch (error) {
        message.replaceChildren(errorList(error));
      }
    };
    const buttons = h("div", { class: "actions" },
      h("button", { onclick: act("cancel"), disabled: TERMINAL.has(found.progress),
                    "data-action": "cancel" }, found.progress === "RUNNING" ? "Request cancel" : "Cancel"),
      h("button", { onclick: act("retry"), disabled: !["FAILED", "CANCELLED"].includes(found.progress),
                    "data-action": "retry" }, "Retry"),
      h("button", { onclick: act("enqueue"), disabled: found.progress !== "PENDING",
                    "data-action": "enqueue" }, "Enqueue"),
      found.links.routes && found.progress === "COMPLETED"
        ? h("a", { href: `#/routes/${id}` }, "Routes on a map →") : null);
    const facts = [
      ["Kind", found.kind], ["Progress", badge(found.progress)],
      ["Attempts", `${found.attempts} of ${found.max_attempts}`], ["Priority", found.priority],
      ["Created", time(found.created_at)], ["Run at", time(found.run_at)],
      ["Started", time(found.started_at)], ["Finished", time(found.finished_at)],
    ];
    if (found.progress === "RUNNING") {
      facts.push(["Lease owner", h("code", { "data-lease-owner": "" }, found.lease_owner || "")],
                 ["Lease expires", time(found.lease_expires_at)],
                 ["Cancel requested", found.cancel_requested ? "yes" : "no"]);
    }
    show(
      h("h1", {}, "Job ", h("code", {}, id)), buttons, message,
      h("div", { class: "grid" },
        h("div", {}, table([["Field"], ["Value"]], facts.map(([label, value]) =>
          h("tr", {}, h("th", {}, label), h("td", {}, value)))),
          found.error ? h("h2", {}, "Error") : null,
          found.error ? h("pre", { class: "error" }, found.error) : null,
          h("h2", {}, "Attempts"), timeline(found)),
        h("div", {}, h("h2", {}, "Payload"), h("pre", {}, JSON.stringify(asked.payload, null, 2)),
          h("h2", {}, "Result"), h("pre", {}, JSON.stringify(found.result, null, 2)))),
    );
    if (!TERMINAL.has(found.progress)) later(() => route(), 2000);
  }

  function timeline(found) {
    const items = (found.attempt_history || []).map((attempt) =>
      h("li", { class: attempt.outcome },
        h("strong", {}, `Attempt ${attempt.attempt}: ${attempt.outcome}`), " ",
        h("span", { class: "muted" }, `${time(attempt.started_at)} → ${time(attempt.ended_at)}`,
          attempt.owner ? ` on ${attempt.owner}` : ""),
        attempt.error ? h("div", { class: "error" }, attempt.error) : null));
    if (found.progress === "RUNNING") {
      items.push(h("li", { class: "running" }, h("strong", {}, `Attempt ${found.attempts}: running`),
        " ", h("span", { class: "muted" }, `since ${time(found.started_at)} on ${found.lease_owner}`)));
    }
    return items.length ? h("ul", { class: "timeline" }, items) : h("p", { class: "muted" }, "No attempt yet.");
  }

  // --- routes of a route job --------------------------------------------------------------
  async function routes(id) {
    const [json, geo] = await Promise.all([
      api("GET", `/jobs/${id}/routes`), api("GET", `/jobs/${id}/routes?format=geojson`)]);
    const m = window.JWMap.model(json, geo);
    const clock = window.JWMap.clock;
    const fixed = (value, digits) => (value === null || value === undefined ? "" : Number(value).toFixed(digits));
    const mapBox = h("div", { id: "map" });
    const summary = table([["Route"], ["Stops", "num"], ["Load", "num"], ["km", "num"], ["Minutes", "num"]],
      m.routes.map((r) => h("tr", { "data-vehicle": r.vehicle },
        h("td", {}, h("span", { class: "swatch", style: `background:${r.colour}` }), `vehicle ${r.vehicle}`, r.type && r.type !== "vehicle" ? ` (${r.type})` : ""),
        h("td", { class: "num" }, r.stops.length), h("td", { class: "num" }, r.load ?? ""),
        h("td", { class: "num" }, fixed(r.km, 2)), h("td", { class: "num" }, fixed(r.minutes, 0)))));
    const perRoute = m.routes.map((r) => h("details", { open: m.routes.length <= 4 },
      h("summary", {}, h("span", { class: "swatch", style: `background:${r.colour}` }),
        `Vehicle ${r.vehicle}: ${r.stops.length} stops`),
      table([["#", "num"], ["Location"], ["Arrival"], ["Wait", "num"], ["Departure"], ["Demand", "num"]],
        r.stops.map((s) => h("tr", {}, h("td", { class: "num" }, s.sequence), h("td", {}, s.id),
          h("td", {}, clock(s.arrival)), h("td", { class: "num" }, fixed(s.wait, 1)),
          h("td", {}, clock(s.departure)), h("td", { class: "num" }, s.demand ?? ""))))));
    const unassigned = m.unassigned.length
      ? table([["Location"], ["Reason"]], m.unassigned.map((u) =>
          h("tr", { class: "unassigned" }, h("td", {}, u.id), h("td", { class: "error" }, u.reason || "unassigned"))))
      : h("p", { class: "muted" }, "Every location is on a route.");
    show(h("h1", {}, "Routes of ", jobLink(id)),
      h("p", { class: "muted" }, `${m.routes.length} routes · ${fixed(m.totals.km, 1)} km · `,
        `${fixed(m.totals.minutes, 0)} min`, config.tile_url ? "" : " · no tile server set (TILE_URL)"),
      mapBox, h("h2", {}, "Routes"), summary, h("h2", {}, "Unassigned"), unassigned,
      h("h2", {}, "Stops"), perRoute);
    window.JWMap.draw(mapBox, m, config.tile_url);
  }

  // --- submit -----------------------------------------------------------------------------
  function example() {
    const depot = { lat: 52.3702, lon: 4.8952 };
    const locations = Array.from({ length: 12 }, (_, i) => ({
      id: `L${i + 1}`, demand: 1 + (i % 3),
      lat: +(depot.lat + 0.02 * Math.cos(i * 0.52) * (1 + (i % 4) / 3)).toFixed(5),
      lon: +(depot.lon + 0.03 * Math.sin(i * 0.52) * (1 + (i % 4) / 3)).toFixed(5),
    }));
    return { location_group: { depot, locations },
             settings: { vehicles: 5, vehicle_capacity: 10, max_runtime_seconds: 3, seed: 1 } };
  }

  function submit() {
    const routeBody = h("textarea", { id: "route-body", spellcheck: "false",
                                      "aria-label": "route job body" });
    const routeResult = h("div", { id: "route-result" });
    const file = h("input", { type: "file", accept: ".json,application/json", id: "route-file",
      onchange: async (event) => { if (event.target.files[0]) routeBody.value = await event.target.files[0].text(); } });
    const send = async (path, body, into) => {
      try {
        const answer = await api("POST", path, body);
        into.replaceChildren(notice(h("span", {}, `Created job `, jobLink(answer.job_id),
          ` (${answer.progress})`)));
        return answer;
      } catch (error) {
        into.replaceChildren(errorList(error));
        return null;
      }
    };
    const kind = h("input", { id: "job-kind", value: "noop", "aria-label": "kind" });
    const payload = h("textarea", { id: "job-payload", spellcheck: "false", "aria-label": "payload",
                                    style: "min-height:80px" }, "{}");
    const jobResult = h("div", { id: "job-result" });
    show(
      h("h1", {}, "Submit"),
      h("h2", {}, "A route job (POST /jobs/generate)"),
      h("p", { class: "muted" }, "Paste the body or load a JSON file; the job is queued at once."),
      h("div", { class: "actions" }, file,
        h("button", { onclick: () => { routeBody.value = JSON.stringify(example(), null, 2); } },
          "Load an example")),
      routeBody,
      h("div", { class: "actions" }, h("button", { class: "primary", id: "submit-route",
        onclick: async () => {
          const answer = await send("/jobs/generate", routeBody.value, routeResult);
          if (answer) window.location.hash = `#/job/${answer.job_id}`;
        } }, "Submit route job")),
      routeResult,
      h("h2", {}, "A PENDING job of any kind (POST /jobs)"),
      h("div", { class: "actions" }, h("label", {}, "Kind ", kind)), payload,
      h("div", { class: "actions" }, h("button", { id: "create-job", onclick: () => {
        let parsed;
        try { parsed = JSON.parse(payload.value || "{}"); } catch (error) {
          jobResult.replaceChildren(notice(`payload is not JSON: ${error.message}`, true));
          return;
        }
        send("/jobs", { kind: kind.value, payload: parsed }, jobResult);
      } }, "Create (PENDING)")),
      jobResult);
  }

  // --- routing ----------------------------------------------------------------------------
  async function route() {
    clearTimeout(refreshTimer);
    const [path, queryString] = (window.location.hash.slice(1) || "/").split("?");
    const params = new URLSearchParams(queryString || "");
    const parts = path.split("/").filter(Boolean);
    document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active",
      a.dataset.nav === ({ jobs: "jobs", job: "jobs", routes: "jobs", submit: "submit" }[parts[0]] || "overview")));
    try {
      if (!parts.length) await overview();
      else if (parts[0] === "jobs") await jobs(params);
      else if (parts[0] === "job" && parts[1]) await job(parts[1]);
      else if (parts[0] === "routes" && parts[1]) await routes(parts[1]);
      else if (parts[0] === "submit") submit();
      else show(notice("No such page.", true));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      show(errorList(error));
    }
  }

  window.addEventListener("hashchange", route);
  api("GET", "/ui/config.json").then((answer) => { config = answer; }, () => {}).finally(route);
})();

// Routes on a map. Reads the two answers of GET /jobs/{id}/routes (JSON and ?format=geojson)
// into one model, then draws it with Leaflet when the package ships it, else as plain SVG.
// Each route is one element of class jw-route, each stop one element of class jw-stop, in
// either renderer (the browser tests count them).
"use strict";

(function () {
  const GOLDEN_ANGLE = 137.508;

  function colour(index) {
    return `hsl(${Math.round((index * GOLDEN_ANGLE + 210) % 360)}, 70%, 42%)`;
  }

  function roleOf(properties) {
    const p = properties || {};
    return String(p.role || p.kind || p.type || "").toLowerCase();
  }

  function vehicleOf(properties) {
    const p = properties || {};
    for (const key of ["vehicle", "route", "route_index", "vehicle_index"]) {
      if (p[key] !== undefined && p[key] !== null) return String(p[key]);
    }
    return "";
  }

  function idOf(item) {
    if (typeof item === "string") return item;
    return String(item.location_id ?? item.id ?? item.location ?? "?");
  }

  function reasonOf(item) {
    if (typeof item === "string") return "";
    const reason = item.reason ?? item.reasons ?? item.why ?? "";
    return Array.isArray(reason) ? reason.join("; ") : String(reason);
  }

  function stopOf(raw, fallbackSequence) {
    return {
      id: idOf(raw),
      sequence: raw.sequence ?? fallbackSequence,
      lat: raw.lat, lon: raw.lon,
      arrival: raw.arrival_minute ?? raw.arrival ?? null,
      wait: raw.wait_minutes ?? raw.wait ?? null,
      departure: raw.departure_minute ?? raw.departure ?? null,
      demand: raw.demand ?? null,
    };
  }

  // One model out of the JSON answer, the GeoJSON answer, or both; tolerant of fields the
  // richer route answer adds (unassigned stops with reasons, per-stop wait and departure).
  function model(json, geo) {
    const routes = new Map();
    const out = { depots: [], routes: [], unassigned: [], totals: {} };
    const addDepot = (lat, lon, id) => {
      if (!out.depots.some((d) => d.lat === lat && d.lon === lon)) out.depots.push({ lat, lon, id });
    };
    const routeFor = (vehicle) => {
      if (!routes.has(vehicle)) {
        routes.set(vehicle, { vehicle, type: null, path: null, stops: [], load: null,
                              km: null, minutes: null, start: null, end: null });
      }
      return routes.get(vehicle);
    };
    if (json) {
      if (json.depot) addDepot(json.depot.lat, json.depot.lon, "depot");
      for (const depot of json.depots || []) addDepot(depot.lat, depot.lon, depot.id);
      for (const raw of json.routes || []) {
        const route = routeFor(String(raw.vehicle));
        route.stops = (raw.stops || []).map((stop, i) => stopOf(stop, i + 1));
        route.type = raw.vehicle_type ?? null;
        route.start = raw.start ?? null;
        route.end = raw.end ?? null;
        route.load = raw.load ?? null;
        route.km = raw.distance_km ?? null;
        route.minutes = raw.duration_minutes ?? null;
      }
      for (const raw of json.unassigned || json.unassigned_stops || []) {
        out.unassigned.push({ id: idOf(raw), reason: reasonOf(raw), lat: raw.lat, lon: raw.lon });
      }
      out.totals = { km: json.total_distance_km, minutes: json.total_duration_minutes,
                     served: json.locations_served };
    }
    const geoStops = new Map();
    for (const feature of (geo && geo.features) || []) {
      const role = roleOf(feature.properties);
      const geometry = feature.geometry || {};
      const props = feature.properties || {};
      if (geometry.type === "Point") {
        const [lon, lat] = geometry.coordinates;
        if (role === "depot") {
          addDepot(lat, lon, props.depot_id ?? "depot");
        } else if (role.startsWith("unassigned")) {
          const id = idOf(props);
          const known = out.unassigned.find((item) => item.id === id);
          if (known) Object.assign(known, { lat, lon });
          else out.unassigned.push({ id, reason: reasonOf(props), lat, lon });
        } else if (role === "stop") {
          const vehicle = vehicleOf(props);
          if (!geoStops.has(vehicle)) geoStops.set(vehicle, []);
          geoStops.get(vehicle).push(stopOf({ ...props, lat, lon }, geoStops.get(vehicle).length + 1));
        }
      } else if (role === "route" && /LineString$/.test(geometry.type || "")) {
        const lines = geometry.type === "LineString" ? [geometry.coordinates] : geometry.coordinates;
        const route = routeFor(vehicleOf(props));
        route.path = lines.flat().map(([lon, lat]) => [lat, lon]);
        route.load ??= props.load ?? null;
        route.km ??= props.distance_km ?? null;
        route.minutes ??= props.duration_minutes ?? null;
      }
    }
    for (const [vehicle, stops] of geoStops) {
      const route = routeFor(vehicle);
      if (!route.stops.length) route.stops = stops;
    }
    out.routes = [...routes.values()].sort((a, b) =>
      a.vehicle.localeCompare(b.vehicle, undefined, { numeric: true }));
    out.routes.forEach((route, i) => {
      route.colour = colour(i);
      if (!route.path) {
        // Straight lines: from the route's start (or the only depot), through its stops, to
        // its end (none for an open route).
        const only = out.depots.length === 1 ? out.depots[0] : null;
        const start = route.start || only;
        const end = route.start || route.end ? route.end : only;
        route.path = [...(start ? [[start.lat, start.lon]] : []),
                      ...route.stops.map((stop) => [stop.lat, stop.lon]),
                      ...(end ? [[end.lat, end.lon]] : [])];
      }
    });
    return out;
  }

  function allPoints(m) {
    const points = [];
    for (const depot of m.depots) points.push([depot.lat, depot.lon]);
    for (const route of m.routes) points.push(...route.path);
    for (const item of m.unassigned) if (item.lat !== undefined) points.push([item.lat, item.lon]);
    return points.length ? points : [[0, 0]];
  }

  function clock(minutes) {
    if (minutes === null || minutes === undefined) return "";
    const whole = Math.round(minutes);
    const day = Math.floor(whole / 1440);
    const hh = String(Math.floor((whole % 1440) / 60)).padStart(2, "0");
    const mm = String(whole % 60).padStart(2, "0");
    return day ? `day ${day + 1} ${hh}:${mm}` : `${hh}:${mm}`;
  }

  function stopLabel(stop) {
    const at = stop.arrival !== null ? ` · arrives ${clock(stop.arrival)}` : "";
    return `#${stop.sequence} ${stop.id}${at}`;
  }

  function drawLeaflet(el, m, tileUrl) {
    const L = window.L;
    const map = L.map(el, { attributionControl: Boolean(tileUrl), zoomSnap: 0.25 });
    if (tileUrl) L.tileLayer(tileUrl, { maxZoom: 19 }).addTo(map);
    L.control.scale().addTo(map);
    for (const route of m.routes) {
      L.polyline(route.path, { color: route.colour, weight: 4, opacity: 0.85,
                               className: "jw-route" })
        .bindTooltip(`vehicle ${route.vehicle}`).addTo(map);
      for (const stop of route.stops) {
        const icon = L.divIcon({ className: "jw-stop", iconSize: [22, 22],
          html: `<span style="background:${route.colour}">${stop.sequence}</span>` });
        L.marker([stop.lat, stop.lon], { icon, title: stopLabel(stop) })
          .bindTooltip(stopLabel(stop)).addTo(map);
      }
    }
    for (const depot of m.depots) {
      const icon = L.divIcon({ className: "jw-depot", iconSize: [20, 20], html: "<span></span>" });
      L.marker([depot.lat, depot.lon], { icon, title: `depot ${depot.id}` }).addTo(map);
    }
    for (const item of m.unassigned) {
      if (item.lat === undefined) continue;
      const icon = L.divIcon({ className: "jw-unassigned", iconSize: [18, 18],
                               html: "<span></span>" });
      L.marker([item.lat, item.lon], { icon, title: `${item.id}: ${item.reason}` }).addTo(map);
    }
    map.fitBounds(L.latLngBounds(allPoints(m)).pad(0.08), { maxZoom: 16 });
    el.appendChild(boundsLabel(m));
    const readout = document.createElement("div");
    readout.className = "map-coords";
    const show = (latlng) => {
      readout.textContent = `${latlng.lat.toFixed(5)}, ${latlng.lng.toFixed(5)}`;
    };
    show(map.getCenter());
    el.appendChild(readout);
    map.on("mousemove", (event) => show(event.latlng));
    return map;
  }

  // Web Mercator, scaled to fit the box: the same projection as the tile maps.
  function mercator([lat, lon]) {
    const rad = (Math.max(-85, Math.min(85, lat)) * Math.PI) / 180;
    return [lon, (Math.log(Math.tan(Math.PI / 4 + rad / 2)) * 180) / Math.PI];
  }

  const SVG_NS = "http://www.w3.org/2000/svg";

  function svgElement(name, attributes, parent) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  function drawSvg(el, m) {
    const width = el.clientWidth || 800;
    const height = el.clientHeight || 480;
    const margin = 30;
    const projected = allPoints(m).map(mercator);
    const xs = projected.map((p) => p[0]);
    const ys = projected.map((p) => p[1]);
    const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const scale = Math.min((width - 2 * margin) / (maxX - minX || 1e-6),
                           (height - 2 * margin) / (maxY - minY || 1e-6));
    const offsetX = (width - (maxX - minX) * scale) / 2;
    const offsetY = (height - (maxY - minY) * scale) / 2;
    const toScreen = (point) => {
      const [x, y] = mercator(point);
      return [offsetX + (x - minX) * scale, height - offsetY - (y - minY) * scale];
    };
    const svg = svgElement("svg", { width, height, viewBox: `0 0 ${width} ${height}` }, el);
    for (const route of m.routes) {
      const d = route.path.map((p, i) => `${i ? "L" : "M"}${toScreen(p).map((v) => v.toFixed(1)).join(",")}`).join("");
      const path = svgElement("path", { d, class: "jw-route", fill: "none", stroke: route.colour,
                                        "stroke-width": 3, "stroke-opacity": 0.85 }, svg);
      svgElement("title", {}, path).textContent = `vehicle ${route.vehicle}`;
    }
    for (const route of m.routes) {
      for (const stop of route.stops) {
        const [x, y] = toScreen([stop.lat, stop.lon]);
        const group = svgElement("g", { class: "jw-stop", transform: `translate(${x},${y})` }, svg);
        svgElement("circle", { r: 10, fill: route.colour, stroke: "#fff" }, group);
        const label = svgElement("text", { "text-anchor": "middle", dy: 4, fill: "#fff",
                                           "font-size": 11, "font-weight": 700 }, group);
        label.textContent = stop.sequence;
        svgElement("title", {}, group).textContent = stopLabel(stop);
      }
    }
    for (const depot of m.depots) {
      const [x, y] = toScreen([depot.lat, depot.lon]);
      const mark = svgElement("rect", { x: x - 8, y: y - 8, width: 16, height: 16,
        class: "jw-depot", fill: "#1d2330", stroke: "#fff", "stroke-width": 2 }, svg);
      svgElement("title", {}, mark).textContent = `depot ${depot.id}`;
    }
    for (const item of m.unassigned) {
      if (item.lat === undefined) continue;
      const [x, y] = toScreen([item.lat, item.lon]);
      const mark = svgElement("rect", { x: x - 6, y: y - 6, width: 12, height: 12, fill: "#fff",
        stroke: "#b42318", "stroke-width": 2, class: "jw-unassigned",
        transform: `rotate(45 ${x} ${y})` }, svg);
      svgElement("title", {}, mark).textContent = `${item.id}: ${item.reason}`;
    }
    drawScale(svg, m, scale, height);
    el.appendChild(boundsLabel(m));
  }

  // The corners of what is drawn, for a map without tiles to read places from.
  function boundsLabel(m) {
    const points = allPoints(m);
    const lats = points.map((p) => p[0]);
    const lons = points.map((p) => p[1]);
    const label = document.createElement("div");
    label.className = "map-bounds";
    label.textContent = `lat ${Math.min(...lats).toFixed(4)} to ${Math.max(...lats).toFixed(4)}, ` +
      `lon ${Math.min(...lons).toFixed(4)} to ${Math.max(...lons).toFixed(4)}`;
    return label;
  }

  // A scale bar with a round length: Mercator degrees per pixel, in metres at the centre.
  function drawScale(svg, m, pixelsPerDegree, height) {
    const lats = allPoints(m).map((p) => p[0]);
    const centre = (Math.min(...lats) + Math.max(...lats)) / 2;
    const metresPerPixel = (111320 * Math.cos((centre * Math.PI) / 180)) / pixelsPerDegree;
    const target = metresPerPixel * 100;
    const step = 10 ** Math.floor(Math.log10(target));
    const metres = [1, 2, 5, 10].map((k) => k * step).filter((v) => v <= target).pop() || step;
    const pixels = metres / metresPerPixel;
    const group = svgElement("g", { class: "jw-scale", transform: `translate(12, ${height - 16})` }, svg);
    svgElement("path", { d: `M0,-6V0H${pixels.toFixed(1)}V-6`, fill: "none", stroke: "#1d2330",
                         "stroke-width": 2 }, group);
    const text = svgElement("text", { x: 4, y: -8, "font-size": 11 }, group);
    text.textContent = metres >= 1000 ? `${metres / 1000} km` : `${metres} m`;
  }

  function draw(el, m, tileUrl) {
    el.textContent = "";
    if (window.L) return drawLeaflet(el, m, tileUrl);
    el.dataset.renderer = "svg";
    return drawSvg(el, m);
  }

  window.JWMap = { model, draw, clock, colour };
})();

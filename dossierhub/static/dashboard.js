// DossierHub dashboard: reads the /api/v1 endpoints with the token the user gives, and draws
// them with plotly.js (served by the same app). No build step, no third-party requests.
"use strict";

(function () {
  const API = "/api/v1";
  const TOKEN_KEY = "dossierhub.token";
  const UNIFIED = "#1b4f8a";
  const PORTAL = "#b35c00";
  const STALE_HOURS = 26;
  const PLOT_CONFIG = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
  };

  const $ = (id) => document.getElementById(id);
  let canReadStatistics = false;

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  // -- talking to the API ------------------------------------------------------------------
  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  async function get(path, params) {
    const url = new URL(API + path, window.location.origin);
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== "" && value !== null && value !== undefined) {
        url.searchParams.set(key, String(value));
      }
    }
    const response = await fetch(url, {
      headers: { Authorization: "Bearer " + token(), Accept: "application/json" },
      cache: "no-store",
    });
    if (!response.ok) {
      let detail = response.statusText;
      try {
        detail = (await response.json()).detail || detail;
      } catch (_ignored) {
        // keep the status text
      }
      throw new ApiError(response.status, detail);
    }
    return response.json();
  }

  // -- formatting --------------------------------------------------------------------------
  const integer = new Intl.NumberFormat("en-GB");

  function percent(rate) {
    return rate === null || rate === undefined ? "–" : (rate * 100).toFixed(1) + "%";
  }

  function when(value) {
    if (!value) return "never";
    const date = new Date(value);
    return date.toLocaleString("en-GB", {
      year: "numeric",
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      timeZone: "Asia/Ho_Chi_Minh",
    });
  }

  function show(id, text, value) {
    const element = $(id);
    element.textContent = text;
    element.dataset.value = value === null || value === undefined ? "" : String(value);
  }

  function setStatus(message, isError) {
    const status = $("status");
    status.textContent = message;
    status.classList.toggle("error", Boolean(isError));
    status.setAttribute("role", isError ? "alert" : "status");
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    if (text instanceof Node) td.appendChild(text);
    else td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function badge(text, kind) {
    const span = document.createElement("span");
    span.className = "badge " + kind;
    span.textContent = text;
    return span;
  }

  function dataTable(containerId, headers, rows) {
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    headers.forEach((label, index) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = label;
      if (index > 0) th.className = "num";
      head.appendChild(th);
    });
    const body = table.createTBody();
    rows.forEach((values) => {
      const tr = body.insertRow();
      values.forEach((value, index) => cell(tr, value, index > 0 ? "num" : ""));
    });
    $(containerId).replaceChildren(table);
  }

  // -- periods -----------------------------------------------------------------------------
  function defaultPeriod() {
    return String(new Date().getFullYear());
  }

  function fillPeriodOptions() {
    const year = new Date().getFullYear();
    const options = [];
    for (let y = year; y > year - 3; y -= 1) {
      options.push(String(y));
      for (let q = 1; q <= 4; q += 1) options.push(y + "-Q" + q);
    }
    $("period-options").replaceChildren(
      ...options.map((value) => {
        const option = document.createElement("option");
        option.value = value;
        return option;
      }),
    );
  }

  function grainFor(period) {
    return /^\d{4}-\d{2}$/.test(period) ? "day" : "month";
  }

  // -- drawing -----------------------------------------------------------------------------
  function baseLayout(extra) {
    return Object.assign(
      {
        margin: { l: 56, r: 16, t: 36, b: 48 },
        font: { family: "system-ui, sans-serif", size: 13, color: "#1a1f29" },
        paper_bgcolor: "#ffffff",
        plot_bgcolor: "#ffffff",
        legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
        hovermode: "x unified",
      },
      extra,
    );
  }

  function drawHeadline(unified, portal, openRow, period, sector) {
    show("online-rate-unified", percent(unified.online_rate), unified.online_rate);
    show("online-rate-portal", percent(portal.online_rate), portal.online_rate);
    show("received-unified", integer.format(unified.received), unified.received);
    show("received-portal", integer.format(portal.received), portal.received);
    const missing = unified.received - portal.received;
    $("received-gap").textContent =
      missing > 0 ? "+" + integer.format(missing) + " the portal never saw" : "";
    show("on-time-rate", percent(unified.on_time_rate), unified.on_time_rate);
    show("resolved-count", integer.format(unified.resolved), unified.resolved);
    show("payment-rate", percent(unified.online_payment_rate), unified.online_payment_rate);
    show("digitisation-rate", percent(unified.digitisation_rate), unified.digitisation_rate);
    show(
      "digitisation-coverage",
      percent(unified.digitisation_coverage),
      unified.digitisation_coverage,
    );
    show("refused-count", integer.format(unified.refused_intake), unified.refused_intake);
    show("withdrawn-count", integer.format(unified.withdrawn), unified.withdrawn);
    show("stopped-count", integer.format(unified.stopped), unified.stopped);
    show("open-count", integer.format(openRow.open), openRow.open);
    show("overdue-count", integer.format(openRow.overdue), openRow.overdue);
    $("headline-scope").textContent = "— " + period + (sector ? ", " + sector : ", all sectors");
  }

  function drawTime(unifiedRows, portalRows, grain) {
    const portalBy = new Map(portalRows.map((r) => [r.group[grain], r]));
    // Buckets with receipts (a day with only resolutions has no online rate to draw).
    const rows = unifiedRows.filter((r) => r.received > 0);
    const x = rows.map((r) => r.group[grain]);
    const portalOf = (r) => portalBy.get(r.group[grain]) || { received: 0, online_rate: null };
    const xaxis = { type: "category", title: { text: grain === "day" ? "Day" : "Month" } };
    Plotly.react(
      $("chart-received"),
      [
        { type: "bar", name: "Unified", x, y: rows.map((r) => r.received), marker: { color: UNIFIED } },
        {
          type: "bar",
          name: "Portal only",
          x,
          y: rows.map((r) => portalOf(r).received),
          marker: { color: PORTAL },
        },
      ],
      baseLayout({
        barmode: "group",
        xaxis,
        yaxis: countAxis(
          rows.map((r) => r.received),
          { title: { text: "Dossiers" } },
        ),
      }),
      PLOT_CONFIG,
    );
    Plotly.react(
      $("chart-rate"),
      [
        {
          type: "scatter",
          mode: "lines+markers",
          name: "Unified",
          x,
          y: rows.map((r) => r.online_rate),
          line: { color: UNIFIED, width: 3 },
        },
        {
          type: "scatter",
          mode: "lines+markers",
          name: "Portal only",
          x,
          y: rows.map((r) => portalOf(r).online_rate),
          line: { color: PORTAL, width: 3, dash: "dash" },
          marker: { symbol: "square" },
        },
      ],
      baseLayout({
        xaxis,
        yaxis: { title: { text: "Online rate" }, tickformat: ".0%", range: [0, 1.05] },
      }),
      PLOT_CONFIG,
    );
    dataTable(
      "table-received",
      [grain === "day" ? "Day" : "Month", "Unified", "Portal only"],
      rows.map((r) => [r.group[grain], integer.format(r.received), integer.format(portalOf(r).received)]),
    );
    dataTable(
      "table-rate",
      [grain === "day" ? "Day" : "Month", "Unified", "Portal only"],
      rows.map((r) => [r.group[grain], percent(r.online_rate), percent(portalOf(r).online_rate)]),
    );
  }

  // Counts are whole numbers: below ten, tick every one rather than at 0.5 steps.
  function countAxis(values, extra) {
    const most = Math.max(0, ...values);
    return Object.assign({ rangemode: "tozero" }, most <= 10 ? { dtick: 1 } : {}, extra);
  }

  function sectorLabel(value) {
    return value ? value : "(no sector)";
  }

  function drawSectors(unifiedRows, portalRows, selected) {
    const portalBy = new Map(portalRows.map((r) => [r.group.sector, r]));
    const rows = unifiedRows
      .filter((r) => r.received > 0)
      .sort((a, b) => a.received - b.received);
    const y = rows.map((r) => sectorLabel(r.group.sector));
    const faded = (color) => rows.map((r) => (!selected || r.group.sector === selected ? color : color + "55"));
    const portalCounts = rows.map((r) => (portalBy.get(r.group.sector) || { received: 0 }).received);
    // In a horizontal group the first trace is drawn lowest: portal first puts unified on top.
    Plotly.react(
      $("chart-sector"),
      [
        {
          type: "bar",
          orientation: "h",
          name: "Portal only",
          y,
          x: portalCounts,
          marker: { color: faded(PORTAL) },
        },
        {
          type: "bar",
          orientation: "h",
          name: "Unified",
          y,
          x: rows.map((r) => r.received),
          marker: { color: faded(UNIFIED) },
          text: rows.map((r) => "online " + percent(r.online_rate)),
          textposition: "auto",
        },
      ],
      baseLayout({
        barmode: "group",
        hovermode: "y unified",
        legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", traceorder: "reversed" },
        margin: { l: 150, r: 16, t: 36, b: 48 },
        xaxis: countAxis(rows.map((r) => r.received), { title: { text: "Dossiers received" } }),
        yaxis: { automargin: true, ticksuffix: "  " },
      }),
      PLOT_CONFIG,
    );
    dataTable(
      "table-sector",
      ["Sector", "Unified", "Portal only", "Online rate (unified)"],
      rows
        .slice()
        .reverse()
        .map((r) => [
          sectorLabel(r.group.sector),
          integer.format(r.received),
          integer.format((portalBy.get(r.group.sector) || { received: 0 }).received),
          percent(r.online_rate),
        ]),
    );
  }

  function fillSectors(rows, keep) {
    // The sectors with dossiers in the period; a chosen sector stays chosen even when it has
    // none there, so its zero shows rather than the filter silently falling away.
    const select = $("sector");
    const sectors = rows.filter((r) => r.group.sector && r.received > 0).map((r) => r.group.sector);
    if (keep && !sectors.includes(keep)) sectors.push(keep);
    const options = [new Option("All sectors", "")];
    sectors.sort((a, b) => a.localeCompare(b, "vi")).forEach((s) => options.push(new Option(s, s)));
    select.replaceChildren(...options);
    select.value = keep;
  }

  function drawSources(sources) {
    const body = $("sources-table").tBodies[0];
    body.replaceChildren();
    if (!sources.length) {
      const tr = body.insertRow();
      const td = cell(tr, "No source has synced yet.", "muted");
      td.colSpan = 8;
      return;
    }
    const now = Date.now();
    for (const source of sources) {
      const tr = body.insertRow();
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = source.source;
      if (source.description) th.title = source.description;
      tr.appendChild(th);
      const fresh = document.createElement("span");
      fresh.textContent = when(source.last_success) + " ";
      if (source.last_success) {
        const hours = (now - new Date(source.last_success).getTime()) / 3600000;
        if (hours > STALE_HOURS) fresh.appendChild(badge("stale", "warn"));
      }
      cell(tr, fresh);
      const status = source.last_status || "none";
      const run = badge(status, status === "succeeded" ? "ok" : status === "running" ? "warn" : "bad");
      if (source.last_error) run.title = source.last_error;
      cell(tr, run);
      cell(tr, integer.format(source.quarantined), "num");
      const latest = source.reconciliation
        .slice()
        .sort((a, b) => (a.taken_at < b.taken_at ? 1 : -1))[0];
      if (!latest) {
        cell(tr, "not yet", "muted");
        cell(tr, "–", "num");
        cell(tr, "–", "num");
        cell(tr, "–", "num");
        continue;
      }
      cell(tr, latest.period + ", " + when(latest.taken_at));
      cell(tr, latest.source_count === null ? "no answer" : integer.format(latest.source_count), "num");
      cell(tr, integer.format(latest.registry_count), "num");
      const gap = latest.gap === null ? "–" : integer.format(latest.gap);
      cell(tr, latest.gap ? badge(gap, "bad") : gap, "num");
    }
  }

  // -- loading -----------------------------------------------------------------------------
  function sumOpen(rows, sector) {
    const chosen = sector ? rows.filter((r) => r.group.sector === sector) : rows;
    return chosen.reduce(
      (total, r) => ({ open: total.open + r.open, overdue: total.overdue + r.overdue }),
      { open: 0, overdue: 0 },
    );
  }

  async function loadStatistics(refreshSectors) {
    const period = $("period").value.trim();
    const grain = grainFor(period);
    const sector = $("sector").value;
    const base = { period, sector };
    const [unified, portal, unifiedTime, portalTime, unifiedSector, portalSector, open] =
      await Promise.all([
        get("/indicators", base),
        get("/indicators", { ...base, portal_only: true }),
        get("/indicators", { ...base, by: grain }),
        get("/indicators", { ...base, by: grain, portal_only: true }),
        get("/indicators", { period, by: "sector" }),
        get("/indicators", { period, by: "sector", portal_only: true }),
        get("/open", { period, by: "sector" }),
      ]);
    if (refreshSectors) fillSectors(unifiedSector.rows, sector);
    // Shown before drawing: plotly sizes a chart from its container, which is 0 wide hidden.
    $("statistics").hidden = false;
    drawHeadline(unified.rows[0], portal.rows[0], sumOpen(open.rows, sector), period, sector);
    drawTime(unifiedTime.rows, portalTime.rows, grain);
    drawSectors(unifiedSector.rows, portalSector.rows, sector);
    $("as-of").textContent =
      "Statistics as of " + when(unified.statistics_as_of) + " (Asia/Ho_Chi_Minh).";
  }

  async function loadSources() {
    const body = await get("/sources");
    drawSources(body.sources);
    $("sources").hidden = false;
  }

  async function refresh(refreshSectors) {
    if (!$("period").checkValidity()) {
      setStatus("Period must be a year (2026), a quarter (2026-Q1) or a month (2026-03).", true);
      return;
    }
    setStatus("Loading…");
    document.body.dataset.state = "loading";
    try {
      const tasks = [loadSources()];
      if (canReadStatistics) tasks.push(loadStatistics(refreshSectors));
      await Promise.all(tasks);
      setStatus("");
      document.body.dataset.state = "ready";
    } catch (error) {
      document.body.dataset.state = "error";
      if (error instanceof ApiError && error.status === 401) {
        forget("The token was refused: " + error.message);
        return;
      }
      setStatus(error.message || String(error), true);
    }
  }

  async function start() {
    if (!token()) {
      $("who").textContent = "Enter an API token to see the statistics.";
      return;
    }
    let me;
    try {
      me = await get("/me");
    } catch (error) {
      forget(error instanceof ApiError ? "The token was refused: " + error.message : String(error));
      return;
    }
    canReadStatistics = me.reads_statistics;
    $("who").textContent = canReadStatistics
      ? "Signed in with a " + me.role + " token."
      : "Signed in with an " + me.role + " token: it shows the health of source " + me.source +
        " only, not the statistics.";
    $("filters").hidden = !canReadStatistics;
    $("statistics").hidden = true;
    await refresh(true);
  }

  function forget(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    canReadStatistics = false;
    $("filters").hidden = true;
    $("statistics").hidden = true;
    $("sources").hidden = true;
    $("who").textContent = "Enter an API token to see the statistics.";
    document.body.dataset.state = "signed-out";
    setStatus(message || "", Boolean(message));
  }

  document.addEventListener("DOMContentLoaded", () => {
    fillPeriodOptions();
    $("period").value = defaultPeriod();
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
      $("token").value = "";
      start();
    });
    $("forget").addEventListener("click", () => forget(""));
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      refresh(true);
    });
    $("sector").addEventListener("change", () => refresh(false));
    start();
  });
})();

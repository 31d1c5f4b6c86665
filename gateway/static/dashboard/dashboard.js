// The migration dashboard: the readiness table, refreshed from /_gateway/readiness, and the
// change form, sent as PATCH /_gateway/routes/{id}. The session cookie goes by itself; the
// CSRF token, which only this page has, goes in a header. Every value is set as text,
// never as HTML: mismatches carry what the apps answered.
"use strict";

(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const refreshMs = Number(document.querySelector('meta[name="refresh-ms"]').content);
  const rows = document.querySelector("#routes tbody");
  const status = document.getElementById("status");
  const form = document.getElementById("change");
  const routeSelect = document.getElementById("change-route");
  const result = document.getElementById("change-result");

  const percent = (fraction) => (fraction === null ? "-" : `${(fraction * 100).toFixed(1)} %`);
  const ms = (value) => (value === null ? "-" : `${value.toFixed(1)} ms`);

  function cell(row, ...lines) {
    const td = document.createElement("td");
    lines.forEach((line, index) => {
      if (index > 0) td.appendChild(document.createElement("br"));
      td.appendChild(document.createTextNode(line));
    });
    row.appendChild(td);
    return td;
  }

  function served(route) {
    if (route.implementations.length === 0) return ["no requests"];
    return route.implementations.map(
      (i) =>
        `${i.served_by}: ${i.requests} req, ${percent(i.share)} of traffic, ` +
        `p50 ${ms(i.p50_ms)}, p95 ${ms(i.p95_ms)}, 5xx ${percent(i.error_rate)}`,
    );
  }

  function parity(route) {
    const s = route.shadow;
    if (s === null) return ["no adapter"];
    if (s.compared === 0) return ["none compared yet"];
    const lines = [`${percent(s.parity)} matched`, `${s.matched} / ${s.compared} compared`];
    if (s.errored || s.dropped) lines.push(`${s.errored} errored, ${s.dropped} dropped`);
    return lines;
  }

  function mismatches(route) {
    if (route.mismatches.length === 0) return ["-"];
    return route.mismatches.flatMap((m) =>
      m.differences.map(
        (d) =>
          `${m.method} ${m.path} ${d.pointer || d.part}: ` +
          `${"primary" in d ? JSON.stringify(d.primary) : "(absent)"} / ${"shadow" in d ? JSON.stringify(d.shadow) : "(absent)"} (${m.request_id})`,
      ),
    );
  }

  function render(report) {
    const body = document.createDocumentFragment();
    for (const route of report.routes) {
      const row = document.createElement("tr");
      row.dataset.route = route.id;
      cell(row, route.id, route.legacy, route.v2 === null ? "legacy only" : `-> ${route.v2}`);
      cell(row, route.state, `share ${route.share} %`).className = "state";
      cell(
        row,
        route.deprecation ? `deprecation ${route.deprecation}` : "",
        route.sunset ? `sunset ${route.sunset}` : "",
      );
      cell(row, ...served(route)).className = "served";
      cell(row, ...parity(route)).className = "parity";
      cell(row, ...mismatches(route)).className = "mismatches";
      const verdict = cell(row, route.verdict, route.why);
      verdict.className = `verdict ${route.verdict.startsWith("ready") ? "ready" : "waiting"}`;
      body.appendChild(row);
    }
    rows.replaceChildren(body);
    // The route list is built once: a refresh must not reset a choice being made.
    if (routeSelect.options.length === 0) {
      for (const route of report.routes) routeSelect.add(new Option(route.id, route.id));
    }
    status.textContent = `Updated ${new Date(report.at).toLocaleTimeString()}; figures of this process over the last ${report.policy.window_s} s.`;
  }

  async function refresh() {
    try {
      const answer = await fetch("/_gateway/readiness", {
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
        credentials: "same-origin",
      });
      if (answer.status === 401) {
        window.location.assign("/_gateway/login");
        return;
      }
      if (!answer.ok) throw new Error(`readiness answered ${answer.status}`);
      render(await answer.json());
    } catch (error) {
      status.textContent = `Not updated: ${error.message}`;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = routeSelect.value;
    const change = {
      state: document.getElementById("change-state").value,
      share: Number(document.getElementById("change-share").value),
      reason: document.getElementById("change-reason").value,
    };
    result.textContent = "Sending...";
    const answer = await fetch(`/_gateway/routes/${encodeURIComponent(id)}`, {
      method: "PATCH",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(change),
    });
    const body = await answer.json();
    result.textContent = answer.ok
      ? `${id} is now ${body.state} (share ${body.share} %)`
      : `Refused: ${body.detail || answer.status}`;
    await refresh();
  });

  refresh();
  setInterval(refresh, refreshMs);
})();

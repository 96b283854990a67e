// The review page's behaviour, in plain JavaScript (no library, nothing loaded from elsewhere):
// sort the plan table by a column, select changes needing approval, approve or reject them
// through the JSON API, and follow the push to the labels by polling its status.
"use strict";

(function () {
  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));
  const POLL_MS = 1000;

  // -- helpers ---------------------------------------------------------------------------------
  async function api(method, url, body) {
    const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = { error: response.status + " " + response.statusText };
    }
    if (!response.ok) {
      throw new Error((data && data.error) || response.status + " " + response.statusText);
    }
    return data;
  }

  function say(text, kind) {
    const box = $("#action-message");
    if (!box) return;
    box.textContent = text;
    box.className = "action-message" + (kind ? " is-" + kind : "");
  }

  // Amounts as the server shows them (views.signed_display, money): thousands grouped with ",".
  // Works on the API's decimal text, never through a float: "+1234.56" -> "+1,234.56".
  function groupThousands(text) {
    const match = /^([+-]?)(\d+)(\.\d+)?$/.exec(String(text));
    if (!match) return String(text);
    return match[1] + match[2].replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (match[3] || "");
  }

  function syncClass(state) {
    return "sync sync-" + String(state || "").replace(/ /g, "-");
  }

  const STATUS_TEXT = {
    approval: "needs approval", approved: "approved", change: "change",
    rejected: "rejected", held: "held", keep: "keep",
  };
  const STATUS_RANK = { approval: 0, approved: 1, change: 2, rejected: 3, held: 4, keep: 5 };

  // -- plan picker -----------------------------------------------------------------------------
  const picker = $("#plan-picker");
  if (picker) {
    picker.addEventListener("change", () => picker.form.submit());
  }

  // -- sorting ---------------------------------------------------------------------------------
  const table = $("#plan-table");

  function cellValue(row, index, numeric) {
    const cell = row.cells[index];
    const raw = cell ? cell.getAttribute("data-value") || "" : "";
    if (numeric) {
      const number = parseFloat(raw);
      return Number.isNaN(number) ? -Infinity : number;
    }
    return raw.toLocaleLowerCase();
  }

  function sortBy(th) {
    const index = Array.from(th.parentNode.children).indexOf(th);
    const numeric = th.getAttribute("data-numeric") === "true";
    const descending = th.classList.contains("sorted-asc");
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = cellValue(a, index, numeric);
      const y = cellValue(b, index, numeric);
      let order = x < y ? -1 : x > y ? 1 : 0;
      if (order === 0) {
        order = cellValue(a, 1, false) < cellValue(b, 1, false) ? -1 : 1; // then by SKU
      }
      return descending ? -order : order;
    });
    rows.forEach((row) => body.appendChild(row));
    $$("th.sortable", table).forEach((other) => {
      other.classList.remove("sorted-asc", "sorted-desc");
      other.setAttribute("aria-sort", "none");
    });
    th.classList.add(descending ? "sorted-desc" : "sorted-asc");
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  if (table) {
    $$("th.sortable", table).forEach((th) => {
      th.addEventListener("click", (event) => {
        // Only the rows on this page are here: with more rows than the page shows, the server sorts.
        if (table.getAttribute("data-complete") !== "true") return;
        event.preventDefault();
        sortBy(th);
      });
    });
  }

  // -- selection -------------------------------------------------------------------------------
  const approveButton = $("#approve-btn");
  const rejectButton = $("#reject-btn");
  const authenticated = document.body.getAttribute("data-authenticated") === "true";

  function selectedSkus() {
    if (approveButton && approveButton.hasAttribute("data-skus")) {
      return [approveButton.getAttribute("data-skus")];
    }
    return $$(".row-select:checked").map((box) => box.value);
  }

  function updateSelection() {
    if (!authenticated || !approveButton || approveButton.hasAttribute("data-skus")) return;
    const skus = selectedSkus();
    const count = $("#selected-count");
    if (count) count.textContent = skus.length + " selected";
    approveButton.disabled = skus.length === 0;
    if (rejectButton) rejectButton.disabled = skus.length === 0;
    $$(".row-select").forEach((box) => box.closest("tr").classList.toggle("is-selected", box.checked));
  }

  $$(".row-select").forEach((box) => box.addEventListener("change", updateSelection));
  const selectAll = $("#select-all");
  if (selectAll) {
    selectAll.addEventListener("change", () => {
      $$(".row-select:not(:disabled)").forEach((box) => { box.checked = selectAll.checked; });
      updateSelection();
    });
  }

  // -- decisions -------------------------------------------------------------------------------
  function updateRow(line) {
    const row = $('tr[data-sku="' + CSS.escape(line.sku) + '"]', table || document);
    if (row) {
      row.setAttribute("data-status", line.status);
      row.className = "status-" + line.status;
      const box = $(".row-select", row);
      if (box) box.remove();
      const badge = $(".col-status .badge", row);
      if (badge) {
        badge.className = "badge badge-" + line.status + " is-fresh";
        badge.textContent = STATUS_TEXT[line.status] || line.status;
        badge.parentNode.setAttribute("data-value", String(STATUS_RANK[line.status]));
      }
      const decided = $(".col-decided", row);
      if (decided) {
        decided.textContent = line.decided_by || "";
        decided.setAttribute("data-value", line.decided_by || "");
      }
      if (line.labels) setSync(line.sku, line.labels);
    }
    const status = $("#sku-status");
    if (status) {
      status.className = "badge badge-" + line.status + " badge-large";
      status.textContent = STATUS_TEXT[line.status] || line.status;
    }
  }

  function updateStats(summary) {
    if (!summary) return;
    const counts = summary.counts;
    const set = (selector, value) => { const el = $(selector); if (el) el.textContent = String(value); };
    set("#stat-approval", counts.approval);
    set("#stat-approved", counts.approved);
    set("#stat-rejected", counts.rejected);
    const attention = $("#stat-approval") && $("#stat-approval").closest(".stat");
    if (attention) attention.classList.toggle("is-zero", counts.approval === 0);
    const tabs = {
      changes: counts.approval + counts.approved + counts.change + counts.rejected,
      approval: counts.approval, approved: counts.approved, change: counts.change,
      rejected: counts.rejected, held: counts.held, keep: counts.keep,
    };
    Object.entries(tabs).forEach(([key, n]) => set('[data-count-for="' + key + '"]', n));
    const profit = $("#stat-profit");
    const money = summary.expected_profit_per_day;
    if (profit && money) {
      const currency = profit.getAttribute("data-currency") || "";
      const change = money.decided_change || "0.00";
      const pct = money.decided_change_pct;
      profit.textContent = groupThousands(change) + " " + currency + " ";
      const small = document.createElement("small");
      small.textContent = "(" + (pct >= 0 ? "+" : "") + pct.toFixed(2) + "%)";
      profit.appendChild(small);
      profit.classList.toggle("pos", change.startsWith("+"));
      profit.classList.toggle("neg", change.startsWith("-"));
      const note = $("#stat-profit-note");
      if (note) {
        note.textContent = groupThousands(money.old) + " " + currency + " today" + (summary.awaiting_approval
          ? "; " + groupThousands(money.if_all_approved_change) + " " + currency + " if every waiting change is approved"
          : "");
      }
    }
  }

  // The SKUs a decision on ``skus`` decides too: the other waiting members of their family,
  // ladder or tier groups (data-with, from views.decided_together), not selected themselves.
  function decidedWith(skus) {
    const chosen = new Set(skus);
    const sources = $$(".row-select").filter((box) => chosen.has(box.value));
    if (approveButton && approveButton.hasAttribute("data-skus")) sources.push(approveButton);
    const mates = [];
    sources.forEach((el) => {
      (el.getAttribute("data-with") || "").split(" ").filter(Boolean).forEach((sku) => {
        if (!chosen.has(sku) && !mates.includes(sku)) mates.push(sku);
      });
    });
    return mates;
  }

  async function decideSelected(approve) {
    const actions = $("#actions");
    const plan = actions && actions.getAttribute("data-plan");
    const skus = selectedSkus();
    if (!plan || skus.length === 0) return;
    const mates = decidedWith(skus);
    if (mates.length) {
      const verb = approve ? "approve" : "reject";
      const question = "A price group (family, ladder or tier) is decided as a whole: to " + verb + " "
        + skus.join(", ") + " also " + (approve ? "approves " : "rejects ") + mates.join(", ") + ".\n\n"
        + verb.charAt(0).toUpperCase() + verb.slice(1) + " these " + (skus.length + mates.length) + " SKUs: "
        + skus.concat(mates).join(", ") + "?";
      if (!window.confirm(question)) {
        say("Nothing " + (approve ? "approved" : "rejected") + ".", "");
        return;
      }
    }
    approveButton.disabled = true;
    if (rejectButton) rejectButton.disabled = true;
    say((approve ? "Approving " : "Rejecting ") + skus.length + "…", "busy");
    try {
      const result = await api("POST", "/api/plans/" + encodeURIComponent(plan) + "/decide", { skus, approve });
      result.lines.forEach(updateRow);
      updateStats(result.summary);
      const verb = approve ? "approved" : "rejected";
      let text = result.decided.length + " " + verb + " by " + result.by + ".";
      if (result.push && result.push.state === "blocked") {
        say(text + " " + result.push.message, "warn");
      } else {
        say(text + (result.push ? " Pushing to the labels…" : ""), "ok");
      }
      if (result.push && result.push.id) followPush(result.push.id);
      if (approveButton.hasAttribute("data-skus")) {
        approveButton.remove();
        if (rejectButton) rejectButton.remove();
      }
    } catch (error) {
      say(error.message, "error");
    } finally {
      if (selectAll) selectAll.checked = false;
      updateSelection();
    }
  }

  if (authenticated && approveButton) {
    approveButton.addEventListener("click", () => decideSelected(true));
    if (rejectButton) rejectButton.addEventListener("click", () => decideSelected(false));
  }

  const pushButton = $("#push-btn");
  if (pushButton) {
    pushButton.addEventListener("click", async () => {
      const plan = $("#actions").getAttribute("data-plan");
      pushButton.disabled = true;
      try {
        const result = await api("POST", "/api/plans/" + encodeURIComponent(plan) + "/push");
        if (result.push) {
          say("Pushing the approved changes…", "busy");
          followPush(result.push.id);
        } else {
          say(result.message, "ok");
        }
      } catch (error) {
        say(error.message, "error");
      } finally {
        pushButton.disabled = false;
      }
    });
  }

  // -- following a push ---------------------------------------------------------------------------
  function setSync(sku, sync) {
    $$('[data-sync-sku="' + CSS.escape(sku) + '"]').forEach((el) => {
      el.className = syncClass(sync.state);
      el.textContent = sync.text;
      const cell = el.closest("td");
      if (cell) cell.setAttribute("data-value", sync.state);
    });
  }

  async function refreshSkuLabels(sku) {
    const labels = $("#label-table");
    if (!labels) return;
    const plan = ($("#plan-line") && $("#plan-line").getAttribute("data-plan")) || "";
    const detail = await api("GET", "/api/sku/" + encodeURIComponent(sku) + (plan ? "?plan=" + encodeURIComponent(plan) : ""));
    detail.labels.forEach((label) => {
      const state = $('[data-label-state="' + CSS.escape(label.label) + '"]');
      if (state) { state.className = syncClass(label.state); state.textContent = label.state; }
      const shows = $('[data-label-shows="' + CSS.escape(label.label) + '"]');
      if (shows) shows.textContent = label.shows || "–";
    });
    const summary = $("#sku-sync");
    if (summary) { summary.className = syncClass(detail.sync.state); summary.textContent = detail.sync.text; }
  }

  function pushText(status) {
    const counts = status.labels || {};
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const parts = [];
    if (total) {
      parts.push(groupThousands(counts.confirmed || 0) + " of " + groupThousands(total)
        + (total === 1 ? " label" : " labels") + " confirmed");
    }
    if (status.message) parts.push(status.message);
    return parts.join(" · ");
  }

  function showPush(status) {
    const panel = $("#push-panel");
    if (!panel) return;
    panel.hidden = false;
    const counts = status.labels || {};
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const confirmed = counts.confirmed || 0;
    const progress = $("#push-progress");
    progress.max = Math.max(total, 1);
    progress.value = confirmed;
    const state = $("#push-state");
    state.textContent = status.state;
    state.className = "badge badge-push-" + status.state;
    $("#push-phase").textContent = status.final ? "" : status.phase + "…";
    $("#push-message").textContent = pushText(status) || "Waiting…";
    Object.entries(status.skus || {}).forEach(([sku, sync]) => setSync(sku, sync));
  }

  const following = new Set();
  function followPush(id) {
    if (following.has(id)) return;
    following.add(id);
    const sku = $("#plan-line") ? $("#plan-line").getAttribute("data-sku") : null;
    const tick = async () => {
      try {
        const status = await api("GET", "/api/pushes/" + encodeURIComponent(id));
        showPush(status);
        if (sku) await refreshSkuLabels(sku);
        if (status.final) {
          following.delete(id);
          const kind = status.state === "done" ? "ok" : "warn";
          const text = pushText(status);
          say("Push " + status.state + (text ? ": " + text : ""), kind);
          return;
        }
      } catch (error) {
        say("Lost track of the push: " + error.message, "error");
        following.delete(id);
        return;
      }
      window.setTimeout(tick, POLL_MS);
    };
    tick();
  }

  const panel = $("#push-panel");
  if (panel && panel.getAttribute("data-push-id")) followPush(panel.getAttribute("data-push-id"));
  const labelTable = $("#label-table");
  if (labelTable && labelTable.getAttribute("data-active-push")) followPush(labelTable.getAttribute("data-active-push"));
})();

// Runs page: refresh the table body in place while runs are active (no full reload, no flicker).
const table = document.getElementById("runs");
const body = document.getElementById("run-rows");
const ACTIVE_MS = 2000;
const IDLE_MS = 10000; // new runs appear on page 1 even when nothing is running
let last = null;

function anyActive() {
  return body.querySelector('tr[data-active="true"]') !== null;
}

async function refresh() {
  try {
    const response = await fetch(table.dataset.rowsUrl, { headers: { Accept: "text/html" } });
    if (response.ok) {
      const html = await response.text();
      if (html !== last) {
        last = html;
        body.innerHTML = html; // server-rendered and escaped by the same template as the first paint
      }
    }
  } catch (error) {
    console.warn("runs refresh failed", error);
  }
  schedule();
}

function schedule() {
  const firstPage = !new URL(table.dataset.rowsUrl, location.href).searchParams.has("page");
  if (anyActive()) setTimeout(refresh, ACTIVE_MS);
  else if (firstPage) setTimeout(refresh, IDLE_MS);
}

schedule();

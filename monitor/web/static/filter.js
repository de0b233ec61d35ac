"use strict";
// The matrix filter box: hides the rows whose model id does not contain the text typed,
// a moment after the last keystroke. Without JavaScript the box is a plain GET form.
for (const box of document.querySelectorAll("input[data-table]")) {
  const table = document.getElementById(box.dataset.table);
  if (!table) continue; // no models yet
  const shown = document.getElementById(box.dataset.table + "-shown");
  const rows = Array.from(table.tBodies[0].rows);
  const ids = rows.map((row) => row.cells[0].textContent.toLowerCase());
  let timer = 0;
  const apply = () => {
    const text = box.value.trim().toLowerCase();
    let count = 0;
    rows.forEach((row, i) => {
      row.hidden = !ids[i].includes(text);
      count += row.hidden ? 0 : 1;
    });
    if (shown) shown.textContent = String(count);
  };
  box.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(apply, 150);
  });
}

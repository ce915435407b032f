/* crimemap: sortable data tables, as progressive enhancement.
 *
 * A table with data-sortable reads the same without script (in name order). With script, each column
 * heading becomes a button that sorts the rows by that column, ascending then descending; aria-sort
 * says which column and way, and a polite live region tells screen reader users. A cell's data-sort
 * holds its raw number ("" when unknown: such rows always go last); other cells sort by their text.
 */
(function () {
  "use strict";

  function key(row, col) {
    var cell = row.cells[col];
    if (!cell) { return { missing: true }; }
    if (cell.hasAttribute("data-sort")) {
      var raw = cell.getAttribute("data-sort");
      return raw === "" ? { missing: true } : { number: parseFloat(raw) };
    }
    return { text: cell.textContent.trim() };
  }

  function compare(a, b) {
    if (a.missing || b.missing) { return (a.missing ? 1 : 0) - (b.missing ? 1 : 0); }
    if (a.number !== undefined && b.number !== undefined) { return a.number - b.number; }
    return String(a.text).localeCompare(String(b.text), "en-GB", { numeric: true });
  }

  function enhance(table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    var status = document.createElement("p");
    status.className = "visually-hidden";
    status.setAttribute("aria-live", "polite");
    table.parentNode.insertBefore(status, table);
    Array.prototype.forEach.call(heads, function (th, col) {
      var label = th.textContent.trim();
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = label;
      th.textContent = "";
      th.appendChild(button);
      button.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows).map(function (row, i) {
          return { row: row, key: key(row, col), i: i };
        });
        rows.sort(function (a, b) {
          var order = compare(a.key, b.key);
          if (!a.key.missing && !b.key.missing && !ascending) { order = -order; }
          return order || a.i - b.i;
        });
        rows.forEach(function (item) { body.appendChild(item.row); });
        status.textContent = "Sorted by " + label + ", " + (ascending ? "ascending" : "descending") + ".";
      });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table[data-sortable]"), enhance);
  // Hints that only make sense once the headings are buttons.
  Array.prototype.forEach.call(document.querySelectorAll("[data-sort-hint]"), function (hint) {
    hint.hidden = false;
  });
})();

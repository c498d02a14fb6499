/* Progressive enhancement of the donation form (it works without this script):
   preset amounts follow the chosen currency and frequency, and the card fee the donor
   may cover is shown as they choose. The fee formula mirrors webapp/donations/fees.py. */
(function () {
  "use strict";
  var form = document.querySelector(".donate-form");
  if (!form) { return; }
  var presets = JSON.parse(form.getAttribute("data-presets") || "{}");
  var language = form.getAttribute("data-language") || "en";
  var percent = Number(form.getAttribute("data-fee-percent")) / 10000;
  var fixed = Number(form.getAttribute("data-fee-fixed"));
  var list = document.getElementById("preset-list");
  var custom = document.getElementById("custom_amount");
  var feeBox = document.getElementById("cover_fee");
  var feeOutput = document.getElementById("fee-output");
  var otherLabel = list.querySelector("input[value=other]").parentNode;
  var amountHints = JSON.parse(form.getAttribute("data-amount-hints") || "{}");
  var feeHints = JSON.parse(form.getAttribute("data-fee-hints") || "{}");
  var amountHint = document.getElementById("custom_amount-hint");
  var feeHint = document.getElementById("fee-hint-text");

  function checked(name) {
    var input = form.querySelector("input[name=" + name + "]:checked");
    return input ? input.value : "";
  }
  function money(minor, currency) {
    var digits = new Intl.NumberFormat(language, { style: "currency", currency: currency })
      .resolvedOptions().maximumFractionDigits;
    var major = minor / Math.pow(10, digits);
    var whole = major === Math.round(major);
    return new Intl.NumberFormat(language, {
      style: "currency", currency: currency,
      minimumFractionDigits: whole ? 0 : digits, maximumFractionDigits: whole ? 0 : digits
    }).format(major);
  }
  function giftMinor(currency) {
    var digits = new Intl.NumberFormat(language, { style: "currency", currency: currency })
      .resolvedOptions().maximumFractionDigits;
    var chosen = checked("amount");
    var text = (custom.value || (chosen !== "other" ? chosen : "")).replace(/[\s\u00a0\u202f']/g, "");
    // As the server reads it (webapp/core/money.py): one mark and one or two digits is a
    // decimal mark; otherwise English groups with "," and Russian writes decimals with ",".
    if (/^\d+[.,]\d{1,2}$/.test(text)) {
      text = text.replace(",", ".");
    } else if (language === "en" && /^\d{1,3}(,\d{3})+(\.\d{1,2})?$/.test(text)) {
      text = text.replace(/,/g, "");
    } else if (!/^\d+$/.test(text)) {
      return 0; // the server will ask what was meant; show no sum meanwhile
    }
    var value = Number(text);
    return text && isFinite(value) ? Math.round(value * Math.pow(10, digits)) : 0;
  }
  function showFee() {
    var currency = checked("currency");
    var gift = giftMinor(currency);
    if (!feeBox.checked || gift <= 0) { feeOutput.textContent = ""; return; }
    var fee = Math.ceil((gift + fixed) / (1 - percent)) - gift;
    feeOutput.textContent = "+ " + money(fee, currency) + " = " + money(gift + fee, currency);
  }
  function showHints(currency) {
    if (amountHint && amountHints[currency]) { amountHint.textContent = amountHints[currency]; }
    if (feeHint && feeHints[currency]) { feeHint.textContent = feeHints[currency]; }
  }
  function showPresets() {
    var currency = checked("currency");
    showHints(currency);
    var frequency = checked("frequency");
    var amounts = (presets[currency] || {})[frequency] || [];
    var previous = checked("amount");
    Array.prototype.slice.call(list.querySelectorAll("label")).forEach(function (label) {
      if (label !== otherLabel) { list.removeChild(label); }
    });
    amounts.forEach(function (minor) {
      var digits = new Intl.NumberFormat("en", { style: "currency", currency: currency })
        .resolvedOptions().maximumFractionDigits;
      var major = (minor / Math.pow(10, digits)).toFixed(digits);
      var label = document.createElement("label");
      label.className = "preset";
      var input = document.createElement("input");
      input.type = "radio"; input.name = "amount"; input.value = major;
      input.checked = previous === major;
      var span = document.createElement("span");
      span.textContent = money(minor, currency);
      label.appendChild(input); label.appendChild(document.createTextNode(" ")); label.appendChild(span);
      list.insertBefore(label, otherLabel);
    });
    showFee();
  }
  form.addEventListener("change", function (event) {
    var name = event.target.name;
    if (name === "currency" || name === "frequency") { showPresets(); }
    if (name === "amount" && event.target.value !== "other") { custom.value = ""; }
    showFee();
  });
  custom.addEventListener("input", function () {
    if (custom.value) { list.querySelector("input[value=other]").checked = true; }
    showFee();
  });
  showFee();
})();

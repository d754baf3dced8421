// The storefront: a search box with suggestions as you type, a results grid, filter chips from the
// facets, search by photo and "more like this", all through the search API; clicks and add-to-carts
// are sent back with the search's id (analytics). No framework, no external asset.
"use strict";

(function () {
  const api = document.body.dataset.api;
  const apiKey = document.body.dataset.apiKey;
  const FILTERS = document.body.dataset.filters.split(",");
  const FACET_LABELS = { category: "Category", colour: "Colour", brand: "Brand", gender: "For" };
  const FACET_VALUES_SHOWN = 8;
  const PAGE = 24;
  // Suggestions wait for a pause in typing, so a fast typist sends one request, not one per key.
  const SUGGEST_DELAY_MS = 150;
  const SUGGESTIONS_SHOWN = 8;
  const SUGGESTION_LABELS = { query: "search", category: "category", brand: "brand", colour: "colour", product: "product" };

  const form = document.getElementById("search-form");
  const input = document.getElementById("q");
  const mode = document.getElementById("mode");
  const photoInput = document.getElementById("photo");
  const statusLine = document.getElementById("status");
  const notice = document.getElementById("notice");
  const results = document.getElementById("results");
  const facetsBox = document.getElementById("facets");
  const activeBox = document.getElementById("active-filters");
  const moreButton = document.getElementById("more");
  const cardTemplate = document.getElementById("card-template");
  const suggestionList = document.getElementById("suggestions");

  // What is shown: a text query, a photo, or the products like one product; plus the filters.
  // `asTyped`: the shopper chose "search instead for" the words as typed, without spelling correction.
  let state = { kind: "text", q: "", photo: null, sku: null, filters: {}, offset: 0, asTyped: false };

  function headers() {
    return apiKey ? { "X-Api-Key": apiKey } : {};
  }

  function filterParams(params) {
    for (const [name, values] of Object.entries(state.filters)) {
      for (const value of values) params.append(name, value);
    }
    return params;
  }

  function errorMessage(body, status) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && typeof body === "object") {
      return Object.entries(body)
        .map(([field, messages]) => `${field}: ${[].concat(messages).join(" ")}`)
        .join("; ");
    }
    return `The search failed (HTTP ${status}).`;
  }

  async function request() {
    const params = filterParams(new URLSearchParams());
    params.set("limit", String(PAGE));
    if (state.offset) params.set("offset", String(state.offset));
    if (state.kind === "text") {
      params.set("q", state.q);
      if (mode.value) params.set("mode", mode.value);
      if (state.asTyped) params.set("correct_spelling", "false");
      return fetch(`${api}search/?${params}`, { headers: headers() });
    }
    if (state.kind === "similar") {
      return fetch(`${api}products/${encodeURIComponent(state.sku)}/similar/?${params}`, { headers: headers() });
    }
    const data = new FormData();
    data.append("photo", state.photo);
    return fetch(`${api}search/image/?${params}`, { method: "POST", body: data, headers: headers() });
  }

  async function run({ append = false } = {}) {
    if (!append) state.offset = 0;
    statusLine.classList.remove("error");
    statusLine.textContent = "Searching…";
    let response, body;
    try {
      response = await request();
      body = await response.json();
    } catch (error) {
      showError(`The search service did not answer (${error}).`);
      return;
    }
    if (!response.ok) {
      showError(errorMessage(body, response.status));
      return;
    }
    render(body, append);
  }

  function showError(message) {
    statusLine.textContent = message;
    statusLine.classList.add("error");
    if (!results.children.length) moreButton.hidden = true;
  }

  function describe() {
    if (state.kind === "text") return `“${state.q}”`;
    if (state.kind === "similar") return `products like ${state.sku}`;
    return `your photo (${state.photo.name})`;
  }

  function render(body, append) {
    if (!append) results.replaceChildren();
    for (const product of body.results) results.appendChild(card(product, body.search_id));
    const shown = results.children.length;
    statusLine.textContent =
      `${shown} result${shown === 1 ? "" : "s"} for ${describe()} · ${body.took_ms} ms · model ${body.model_version.name}` +
      (body.mode ? ` · ${body.mode}` : "");
    document.body.dataset.state = "done";
    moreButton.hidden = !body.next;
    renderFacets(body.facets);
    if (!append) renderNotice(body);
  }

  const FILTER_NAMES = { price: "price range", article_type: "category", sub_category: "category", master_category: "category" };

  // "Showing results for ..." after a spelling correction, and what was relaxed to avoid a dead end.
  function renderNotice(body) {
    notice.replaceChildren();
    if (body.corrected_query) {
      const line = document.createElement("span");
      line.className = "corrected";
      line.append("Showing results for ");
      const corrected = document.createElement("strong");
      corrected.textContent = body.corrected_query;
      line.append(corrected, ". Search instead for ");
      const asTyped = document.createElement("a");
      asTyped.href = "#";
      asTyped.className = "as-typed";
      asTyped.textContent = state.q;
      asTyped.addEventListener("click", (event) => {
        event.preventDefault();
        state.asTyped = true;
        run();
      });
      line.append(asTyped, ". ");
      notice.appendChild(line);
    }
    for (const step of body.relaxed || []) {
      const line = document.createElement("span");
      line.className = "relaxed";
      line.dataset.step = step.step;
      line.textContent =
        step.step === "words"
          ? "No product has these words; showing the closest by meaning. "
          : `Too few products match the ${FILTER_NAMES[step.param] || step.param} filter: showing results without it too. `;
      notice.appendChild(line);
    }
    notice.hidden = !notice.children.length;
  }

  function card(product, searchId) {
    const node = cardTemplate.content.firstElementChild.cloneNode(true);
    node.dataset.sku = product.sku;
    node.dataset.searchId = searchId || "";
    node.dataset.score = product.score;
    const image = node.querySelector("img");
    if (product.photo_url) image.src = product.photo_url;
    image.alt = product.title;
    node.querySelector(".title").textContent = product.title;
    node.querySelector(".meta").textContent = [product.brand, product.colour, product.category]
      .filter(Boolean)
      .join(" · ");
    node.querySelector(".price").textContent =
      product.price === null ? "" : `${product.currency || ""} ${product.price}`.trim();
    const opened = () => sendEvent(node, "click");
    image.addEventListener("click", opened);
    node.querySelector(".title").addEventListener("click", opened);
    node.querySelector(".add-to-cart").addEventListener("click", () => {
      node.classList.add("in-cart");
      sendEvent(node, "add_to_cart");
    });
    node.querySelector(".similar").addEventListener("click", () => {
      state = { ...state, kind: "similar", sku: product.sku };
      run();
      window.scrollTo(0, 0);
    });
    return node;
  }

  // A click or add-to-cart on a result, sent with the id of the search that showed it. Analytics only:
  // a failure is not the shopper's problem, so it is not shown.
  async function sendEvent(node, type) {
    if (!node.dataset.searchId) return;
    try {
      const response = await fetch(`${api}events/`, {
        method: "POST",
        headers: { ...headers(), "Content-Type": "application/json" },
        body: JSON.stringify({ search_id: node.dataset.searchId, sku: node.dataset.sku, type }),
        keepalive: true,
      });
      if (response.ok) node.dataset.recorded = `${node.dataset.recorded || ""} ${type}`.trim();
    } catch (error) {
      // The shopper's page goes on; the event is lost.
    }
  }

  // Suggestions as you type: debounced, the latest answer only, arrows and Enter to choose.
  let suggestTimer = null;
  let suggestRequest = null;
  let suggestionItems = [];
  let selectedSuggestion = -1;

  function hideSuggestions() {
    clearTimeout(suggestTimer);
    if (suggestRequest) suggestRequest.abort();
    suggestionList.hidden = true;
    suggestionList.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    suggestionItems = [];
    selectedSuggestion = -1;
  }

  async function fetchSuggestions(typed) {
    if (suggestRequest) suggestRequest.abort();
    suggestRequest = new AbortController();
    const params = new URLSearchParams({ q: typed, limit: String(SUGGESTIONS_SHOWN) });
    let body;
    try {
      const response = await fetch(`${api}suggest/?${params}`, { headers: headers(), signal: suggestRequest.signal });
      if (!response.ok) return hideSuggestions();
      body = await response.json();
    } catch (error) {
      return; // aborted by a newer keystroke, or the service is away: no suggestions, no error
    }
    if (input.value.trim() !== typed) return; // typed on since
    showSuggestions(body.suggestions);
  }

  function showSuggestions(items) {
    suggestionList.replaceChildren();
    suggestionItems = items;
    selectedSuggestion = -1;
    items.forEach((item, index) => {
      const node = document.createElement("li");
      node.role = "option";
      node.id = `suggestion-${index}`;
      node.dataset.kind = item.kind;
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = item.text;
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = SUGGESTION_LABELS[item.kind] || item.kind;
      node.append(text, kind);
      // mousedown, not click: it comes before the input's blur, which hides the list.
      node.addEventListener("mousedown", (event) => {
        event.preventDefault();
        chooseSuggestion(index);
      });
      suggestionList.appendChild(node);
    });
    suggestionList.hidden = !items.length;
    input.setAttribute("aria-expanded", String(Boolean(items.length)));
  }

  function highlight(index) {
    selectedSuggestion = index;
    suggestionList.querySelectorAll("li").forEach((node, position) => {
      node.setAttribute("aria-selected", String(position === index));
    });
    input.setAttribute("aria-activedescendant", index >= 0 ? `suggestion-${index}` : "");
  }

  // A chosen suggestion is searched for by its text; a product's title finds that product first.
  function chooseSuggestion(index) {
    const item = suggestionItems[index];
    if (!item) return;
    input.value = item.text;
    hideSuggestions();
    form.requestSubmit();
  }

  input.addEventListener("input", () => {
    clearTimeout(suggestTimer);
    const typed = input.value.trim();
    if (!typed) return hideSuggestions();
    suggestTimer = setTimeout(() => fetchSuggestions(typed), SUGGEST_DELAY_MS);
  });

  input.addEventListener("keydown", (event) => {
    if (suggestionList.hidden || !suggestionItems.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const last = suggestionItems.length - 1;
      // -1 is the typed text itself: the arrows cycle through it and the suggestions.
      let next = selectedSuggestion + (event.key === "ArrowDown" ? 1 : -1);
      if (next > last) next = -1;
      if (next < -1) next = last;
      highlight(next);
    } else if (event.key === "Enter" && selectedSuggestion >= 0) {
      event.preventDefault();
      chooseSuggestion(selectedSuggestion);
    } else if (event.key === "Escape") {
      hideSuggestions();
    }
  });

  input.addEventListener("blur", () => hideSuggestions());

  function chip(label, count, active, onClick) {
    const node = document.createElement("button");
    node.type = "button";
    node.className = active ? "chip active" : "chip";
    node.textContent = label;
    if (count !== null) {
      const span = document.createElement("span");
      span.className = "count";
      span.textContent = count;
      node.appendChild(span);
    }
    node.addEventListener("click", onClick);
    return node;
  }

  function toggleFilter(param, value) {
    const values = new Set(state.filters[param] || []);
    if (values.has(value)) values.delete(value);
    else values.add(value);
    state.filters = { ...state.filters, [param]: [...values] };
    if (!values.size) delete state.filters[param];
    run();
  }

  function renderFacets(facets) {
    activeBox.replaceChildren();
    for (const [param, values] of Object.entries(state.filters)) {
      for (const value of values) {
        activeBox.appendChild(chip(`${value} ✕`, null, true, () => toggleFilter(param, value)));
      }
    }
    facetsBox.replaceChildren();
    for (const [name, values] of Object.entries(facets || {})) {
      if (!values.length) continue;
      const group = document.createElement("div");
      group.className = "group";
      group.dataset.facet = name;
      const title = document.createElement("strong");
      title.textContent = FACET_LABELS[name] || name;
      group.appendChild(title);
      for (const facet of values.slice(0, FACET_VALUES_SHOWN)) {
        const active = (state.filters[facet.param] || []).includes(facet.value);
        group.appendChild(chip(facet.value, facet.count, active, () => toggleFilter(facet.param, facet.value)));
      }
      facetsBox.appendChild(group);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = input.value.trim();
    if (!q) {
      showError("Type what you are looking for, e.g. navy check shirt.");
      return;
    }
    hideSuggestions();
    state = { ...state, kind: "text", q, asTyped: false };
    const url = new URL(window.location);
    url.searchParams.set("q", q);
    history.replaceState(null, "", url);
    run();
  });

  photoInput.addEventListener("change", () => {
    if (!photoInput.files.length) return;
    state = { ...state, kind: "photo", photo: photoInput.files[0] };
    run();
    photoInput.value = "";
  });

  moreButton.addEventListener("click", () => {
    state.offset += PAGE;
    run({ append: true });
  });

  const initial = new URLSearchParams(window.location.search).get("q");
  for (const name of FILTERS) {
    const values = new URLSearchParams(window.location.search).getAll(name);
    if (values.length) state.filters[name] = values;
  }
  if (initial) {
    input.value = initial;
    state.q = initial;
    run();
  }
})();

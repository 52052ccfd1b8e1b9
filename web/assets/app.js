// Iris web UI: one page, no external asset, talking to the same HTTP API as the CLI.
"use strict";

const T = {
  en: {
    sql: "SQL console", run: "Run", query: "Query (SQL over events)", rows: "rows", patterns: "Misuse patterns",
    stats: "Statistics", report: "Report", confidential: ":c under the project's threshold (on the noisy count)", margin: "Total: margin (sum of the noisy cells)", budget: "Privacy budget", noisy: "Every figure is differentially private: noise was added, none is exact.", spent: "this answer spent", left: "left", ask: "Your query",
    language: "Language", signin: "Sign in", signout: "Sign out", token: "Access token", trace: "Trace",
    consultations: "My consultations", chain: "Chain status", signedAs: "Signed in as", role: "role",
    institution: "institution", scope: "scope", deliberation: "Deliberation", caseRef: "Case reference",
    by: "Search by", subject: "Person (NISS/BCE)", actor: "Agent", ticket: "Ticket", key: "Value",
    from: "From", to: "To", search: "Search", events: "events", export: "Export CSV", page: "Page",
    prev: "Previous", next: "Next", perDay: "Events per day", denied: "Refused", seals: "seals",
    verify: "Verify now", checkpoint: "Download checkpoint", lastVerify: "Last verify", never: "not run yet",
    allHolds: "all holds", findings: "finding(s)", needCase: "An inspector chooses a deliberation and enters the case reference before any search.",
    noConsultations: "No institution consulted your data in this period.", when: "when", what: "what",
    signinFirst: "Sign in with your token first.", kind: "kind",
    proof: "proof", proofHelp: "Each consultation's proof is a file anyone can check without Iris: it shows the events, signed into the log. Check it offline with: iris verify-proof FILE --key KEY, where KEY is the log's published key.",
  },
  fr: {
    sql: "Console SQL", run: "Exécuter", query: "Requête (SQL sur events)", rows: "lignes", patterns: "Usages suspects",
    stats: "Statistiques", report: "Rapport", confidential: ":c sous le seuil du projet (sur le comptage bruité)", margin: "Total : marge (somme des cellules bruitées)", budget: "Budget de confidentialité", noisy: "Chaque chiffre est protégé par confidentialité différentielle : du bruit a été ajouté, aucun n'est exact.", spent: "cette réponse a dépensé", left: "restant", ask: "Votre requête",
    language: "Langue", signin: "Se connecter", signout: "Se déconnecter", token: "Jeton d'accès", trace: "Traçage",
    consultations: "Mes consultations", chain: "État de la chaîne", signedAs: "Connecté en tant que", role: "rôle",
    institution: "institution", scope: "périmètre", deliberation: "Délibération", caseRef: "Référence du dossier",
    by: "Rechercher par", subject: "Personne (NISS/BCE)", actor: "Agent", ticket: "Ticket", key: "Valeur",
    from: "Du", to: "Au", search: "Rechercher", events: "événements", export: "Exporter en CSV", page: "Page",
    prev: "Précédent", next: "Suivant", perDay: "Événements par jour", denied: "Refusé", seals: "sceaux",
    verify: "Vérifier maintenant", checkpoint: "Télécharger le point de contrôle", lastVerify: "Dernière vérification", never: "pas encore faite",
    allHolds: "tout est intact", findings: "constat(s)", needCase: "Un inspecteur choisit une délibération et saisit la référence du dossier avant toute recherche.",
    noConsultations: "Aucune institution n'a consulté vos données pendant cette période.", when: "quand", what: "quoi",
    signinFirst: "Connectez-vous d'abord avec votre jeton.", kind: "type",
    proof: "preuve", proofHelp: "La preuve de chaque consultation est un fichier que chacun peut vérifier sans Iris : elle montre les événements, scellés dans le journal. Vérifiez-la hors ligne avec : iris verify-proof FICHIER --key CLÉ, où CLÉ est la clé publiée du journal.",
  },
  nl: {
    sql: "SQL-console", run: "Uitvoeren", query: "Zoekopdracht (SQL op events)", rows: "rijen", patterns: "Misbruikpatronen",
    stats: "Statistieken", report: "Rapport", confidential: ":c onder de drempel van het project (op de verruiste telling)", margin: "Totaal: marge (som van de verruiste cellen)", budget: "Privacybudget", noisy: "Elk cijfer is differentieel privaat: er is ruis toegevoegd, geen enkel is exact.", spent: "dit antwoord verbruikte", left: "over", ask: "Uw query",
    language: "Taal", signin: "Aanmelden", signout: "Afmelden", token: "Toegangstoken", trace: "Opsporing",
    consultations: "Mijn raadplegingen", chain: "Status van de keten", signedAs: "Aangemeld als", role: "rol",
    institution: "instelling", scope: "reikwijdte", deliberation: "Beraadslaging", caseRef: "Dossierreferentie",
    by: "Zoeken op", subject: "Persoon (INSZ/KBO)", actor: "Agent", ticket: "Ticket", key: "Waarde",
    from: "Van", to: "Tot", search: "Zoeken", events: "gebeurtenissen", export: "Exporteren als CSV", page: "Pagina",
    prev: "Vorige", next: "Volgende", perDay: "Gebeurtenissen per dag", denied: "Geweigerd", seals: "zegels",
    verify: "Nu controleren", checkpoint: "Controlepunt downloaden", lastVerify: "Laatste controle", never: "nog niet uitgevoerd",
    allHolds: "alles klopt", findings: "bevinding(en)", needCase: "Een inspecteur kiest een beraadslaging en geeft de dossierreferentie op vóór elke zoekopdracht.",
    noConsultations: "Geen enkele instelling raadpleegde uw gegevens in deze periode.", when: "wanneer", what: "wat",
    signinFirst: "Meld u eerst aan met uw token.", kind: "soort",
    proof: "bewijs", proofHelp: "Het bewijs van elke raadpleging is een bestand dat iedereen zonder Iris kan controleren: het toont de gebeurtenissen, verzegeld in het logboek. Controleer het offline met: iris verify-proof BESTAND --key SLEUTEL, waarbij SLEUTEL de gepubliceerde sleutel van het logboek is.",
  },
};

// Beyond the page furniture: column names, the citizen's columns and values, the busy indicator.
const MORE = {
  en: {
    busy: "Working…", col_when: "When", col_institution: "Institution", col_message: "Message", col_operation: "Operation", col_purpose: "Purpose", col_ticket: "Ticket",
  },
  fr: {
    busy: "Traitement en cours…", col_when: "Quand", col_institution: "Institution", col_message: "Message", col_operation: "Opération", col_purpose: "Finalité", col_ticket: "Ticket",
    ts: "date et heure", actor_id: "agent", actor_org: "institution", subject_id: "personne", ticket: "ticket", message_type: "type de message", operation: "opération", result: "résultat", source: "source", purpose: "finalité",
    quarter: "trimestre", sector: "secteur", region: "région", workers: "travailleurs", joint_committee: "commission paritaire", fte: "ETP", kind: "type", relations_started: "relations commencées", end_quarter: "trimestre de fin", relations_ended: "relations terminées", position: "position", gender: "genre", persons: "personnes", age_class: "classe d'âge", q1_wage: "salaire 1er quartile", median_wage: "salaire médian", q3_wage: "salaire 3e quartile", n: "nombre",
    consult: "consultation", list: "recherche", modify: "modification", create: "création", delete: "suppression",
  },
  nl: {
    busy: "Bezig…", col_when: "Wanneer", col_institution: "Instelling", col_message: "Bericht", col_operation: "Handeling", col_purpose: "Doel", col_ticket: "Ticket",
    ts: "datum en tijd", actor_id: "agent", actor_org: "instelling", subject_id: "persoon", ticket: "ticket", message_type: "berichttype", operation: "handeling", result: "resultaat", source: "bron", purpose: "doel",
    quarter: "kwartaal", sector: "sector", region: "gewest", workers: "werknemers", joint_committee: "paritair comité", fte: "VTE", kind: "soort", relations_started: "begonnen relaties", end_quarter: "eindkwartaal", relations_ended: "beëindigde relaties", position: "positie", gender: "geslacht", persons: "personen", age_class: "leeftijdsklasse", q1_wage: "loon 1e kwartiel", median_wage: "mediaanloon", q3_wage: "loon 3e kwartiel", n: "aantal",
    consult: "raadpleging", list: "opzoeking", modify: "wijziging", create: "aanmaak", delete: "verwijdering",
  },
};
Object.keys(MORE).forEach((l) => Object.assign(T[l], MORE[l]));

// The server speaks English: its scope texts, refusal reasons and report titles, in French and Dutch.
const SENTENCES = [
  [/^security adviser: events of the users of (.+)$/, { fr: "conseiller en sécurité : événements des utilisateurs de $1", nl: "veiligheidsadviseur: gebeurtenissen van de gebruikers van $1" }],
  [/^deliberation (\S+) \((.+)\), events of (\S+) to (\S+)$/, { fr: "délibération $1 ($2), événements du $3 au $4", nl: "beraadslaging $1 ($2), gebeurtenissen van $3 tot $4" }],
  [/^your own data, the last (\d+) months: which institution, when, for which purpose$/, { fr: "vos propres données, les $1 derniers mois : quelle institution, quand, pour quelle finalité", nl: "uw eigen gegevens, de laatste $1 maanden: welke instelling, wanneer, met welk doel" }],
  [/^administrator$/, { fr: "administrateur", nl: "beheerder" }],
  [/^auditors read Iris's own audit events only \(who asked what\), never the network's events$/, { fr: "les auditeurs lisent uniquement les événements d'audit d'Iris (qui a demandé quoi), jamais ceux du réseau", nl: "auditors lezen alleen de auditgebeurtenissen van Iris (wie vroeg wat), nooit die van het netwerk" }],
  [/^auditors verify the chain and export checkpoints$/, { fr: "les auditeurs vérifient la chaîne et exportent des points de contrôle", nl: "auditors controleren de keten en exporteren controlepunten" }],
  [/^differentially private aggregates of the labour-market tables, paid from project (\S+)'s privacy budget \(cells under (\d+) persons shown :c\)$/, { fr: "agrégats différentiellement privés des tables du marché du travail, payés sur le budget de confidentialité du projet $1 (cellules de moins de $2 personnes affichées :c)", nl: "differentieel private aggregaten van de arbeidsmarkttabellen, betaald uit het privacybudget van project $1 (cellen onder $2 personen getoond als :c)" }],
  [/^you may trace only the users of the institutions you supervise \((.*)\); `(.+)` is not one of them$/, { fr: "vous ne pouvez tracer que les utilisateurs des institutions que vous supervisez ($1) ; « $2 » n'en fait pas partie", nl: "u mag alleen de gebruikers opsporen van de instellingen die u superviseert ($1); „$2” hoort daar niet bij" }],
  [/^an inspector acts under a deliberation: give one of (.+)$/, { fr: "un inspecteur agit sous une délibération : choisissez parmi $1", nl: "een inspecteur handelt onder een beraadslaging: kies uit $1" }],
  [/^deliberation (\S+) requires a case reference$/, { fr: "la délibération $1 exige une référence de dossier", nl: "beraadslaging $1 vereist een dossierreferentie" }],
  [/^case `(.+)` is not registered under deliberation (\S+)$/, { fr: "le dossier « $1 » n'est pas enregistré sous la délibération $2", nl: "dossier „$1” is niet geregistreerd onder beraadslaging $2" }],
  [/^deliberation (\S+) is not granted to your service \((.+)\)$/, { fr: "la délibération $1 n'est pas accordée à votre service ($2)", nl: "beraadslaging $1 is niet toegekend aan uw dienst ($2)" }],
  [/^deliberation (\S+) may be used from (\S+) to (\S+), not on (\S+)$/, { fr: "la délibération $1 est utilisable du $2 au $3, pas le $4", nl: "beraadslaging $1 is bruikbaar van $2 tot $3, niet op $4" }],
  [/^no deliberation `(.+)`$/, { fr: "aucune délibération « $1 »", nl: "geen beraadslaging „$1”" }],
  [/^a citizen sees who consulted their own data \(GET \/v1\/me\/consultations\), nothing else$/, { fr: "un citoyen voit qui a consulté ses propres données (GET /v1/me/consultations), rien d'autre", nl: "een burger ziet wie zijn eigen gegevens raadpleegde (GET /v1/me/consultations), niets anders" }],
  [/^syntax error near `(.*)` at line (\d+), column (\d+): expected (.+)$/, { fr: "erreur de syntaxe près de « $1 » (ligne $2, colonne $3) : attendu $4", nl: "syntaxisfout bij „$1” (regel $2, kolom $3): verwacht $4" }],
  [/^syntax error: the statement ends too early: expected (.+)$/, { fr: "erreur de syntaxe : la requête s'arrête trop tôt : attendu $1", nl: "syntaxisfout: de query stopt te vroeg: verwacht $1" }],
  [/^`(.+)` is not a valid NISS: its check digits do not match$/, { fr: "« $1 » n'est pas un NISS valide : ses chiffres de contrôle ne correspondent pas", nl: "„$1” is geen geldig INSZ: de controlecijfers kloppen niet" }],
  [/^`(.+)` is not a valid number: a NISS has 11 digits, a BCE number 10, an ONSS number 5 to 10$/, { fr: "« $1 » n'est pas un numéro valide : un NISS a 11 chiffres, un numéro BCE 10, un numéro ONSS de 5 à 10", nl: "„$1” is geen geldig nummer: een INSZ heeft 11 cijfers, een KBO-nummer 10, een RSZ-nummer 5 tot 10" }],
  [/^`(.+)` is not a NISS, BCE or ONSS number: digits only, without dots, dashes or spaces$/, { fr: "« $1 » n'est pas un numéro NISS, BCE ou ONSS : uniquement des chiffres, sans points, tirets ni espaces", nl: "„$1” is geen INSZ-, KBO- of RSZ-nummer: alleen cijfers, zonder punten, streepjes of spaties" }],
  [/^Salaried employment by NACE section and region, per quarter \(persons with a declaration\)$/, { fr: "Emploi salarié par section NACE et région, par trimestre (personnes avec une déclaration)", nl: "Loontrekkende tewerkstelling per NACE-sectie en gewest, per kwartaal (personen met een aangifte)" }],
  [/^Full-time equivalents by joint committee, per quarter of (\d+)$/, { fr: "Équivalents temps plein par commission paritaire, par trimestre de $1", nl: "Voltijdse equivalenten per paritair comité, per kwartaal van $1" }],
  [/^Job inflows: employment relations started per quarter, by kind of contract$/, { fr: "Entrées : relations de travail commencées par trimestre, par type de contrat", nl: "Instroom: arbeidsrelaties begonnen per kwartaal, per soort contract" }],
  [/^Job outflows: employment relations ended per quarter, by region of the workplace$/, { fr: "Sorties : relations de travail terminées par trimestre, par région du lieu de travail", nl: "Uitstroom: arbeidsrelaties beëindigd per kwartaal, per gewest van de werkplaats" }],
  [/^Socio-economic position on the last day of (\S+), by region and gender$/, { fr: "Position socio-économique au dernier jour de $1, par région et genre", nl: "Socio-economische positie op de laatste dag van $1, per gewest en geslacht" }],
  [/^Quarterly gross wage of full-time workers by age class and gender: quartiles and median \(last quarter\)$/, { fr: "Salaire brut trimestriel des travailleurs à temps plein par classe d'âge et genre : quartiles et médiane (dernier trimestre)", nl: "Bruto kwartaalloon van voltijdse werknemers per leeftijdsklasse en geslacht: kwartielen en mediaan (laatste kwartaal)" }],
];
// A sentence from the server in the page's language (unchanged when no pattern knows it).
const tr = (text) => {
  if (state.lang === "en" || text == null) return text;
  for (const [re, to] of SENTENCES) if (re.test(text)) return String(text).replace(re, to[state.lang]);
  return text;
};
// A column name or code in the page's language.
const word = (w) => (state.lang === "en" ? w : T[state.lang][w] || w);
const LOCALES = { en: "en-GB", fr: "fr-BE", nl: "nl-BE" };
// An ISO timestamp (UTC, possibly with microseconds) as a local date and time, to the minute.
function localTime(ts) {
  let s = String(ts || "").replace(/(\.\d{3})\d+/, "$1");
  if (!/(Z|[+-]\d\d:?\d\d)$/.test(s)) s += "Z";
  const d = new Date(s);
  return isNaN(d) ? String(ts) : d.toLocaleString(LOCALES[state.lang] || "en-GB", { dateStyle: "medium", timeStyle: "short" });
}

const state = {
  lang: localStorage.getItem("iris.lang") || "en",
  token: sessionStorage.getItem("iris.token") || "",
  me: null,
  deliberation: sessionStorage.getItem("iris.deliberation") || "",
  caseRef: sessionStorage.getItem("iris.case") || "",
  rows: [], sort: null, desc: false, page: 0,
};
const PAGE = 25;
const COLUMNS = ["ts", "actor_id", "actor_org", "subject_id", "ticket", "message_type", "operation", "result", "source", "purpose"];

const t = (k) => (T[state.lang] || T.en)[k] || T.en[k] || k;
const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

// Requests under way: while there are any, the header says so and the page's buttons wait.
let pending = 0;
function busy(delta) {
  pending += delta;
  const b = $("#busy");
  if (b) { b.hidden = pending === 0; b.textContent = t("busy"); }
  document.body.setAttribute("aria-busy", pending > 0 ? "true" : "false");
  document.querySelectorAll("#main button[type=submit]").forEach((btn) => { btn.disabled = pending > 0; });
}

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + state.token }, options.headers || {});
  busy(1);
  let r, body;
  try {
    r = await fetch(path, Object.assign({}, options, { headers }));
    const type = r.headers.get("content-type") || "";
    body = type.includes("json") ? await r.json() : await r.text();
  } finally {
    busy(-1);
  }
  if (!r.ok) {
    const e = new Error((body && body.error) || String(r.status));
    e.policies = (body && body.policies) || [];
    e.status = r.status;
    throw e;
  }
  return body;
}

// Downloads the proof bundle of a ticket (GET /v1/proof) as a file, byte for byte as served: the
// bundle is checked offline by `iris verify-proof`, so the page must not re-serialise it.
async function downloadProof(ticket, where) {
  const params = new URLSearchParams({ ticket });
  if (state.me.role === "inspector") { params.set("deliberation", state.deliberation); params.set("case", state.caseRef); }
  const r = await fetch("/v1/proof?" + params.toString(), { headers: { Authorization: "Bearer " + state.token } });
  const text = await r.text();
  const old = document.getElementById("proof-file");
  if (old) old.remove();
  if (!r.ok) {
    let body = {};
    try { body = JSON.parse(text); } catch (_) { /* not JSON: the status says it */ }
    const e = new Error(body.error || String(r.status));
    e.policies = body.policies || [];
    where.insertAdjacentHTML("afterbegin", errorBox(e));
    return;
  }
  const a = document.createElement("a");
  a.id = "proof-file";
  a.href = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  a.download = "iris-proof-" + ticket.replace(/[^A-Za-z0-9.-]/g, "_") + ".json";
  a.textContent = a.download;
  where.prepend(a);
  a.click();
}

function proofButtons(root, where) {
  root.querySelectorAll("button.proof").forEach((b) => b.addEventListener("click", (e) => {
    e.preventDefault();
    const err = document.getElementById("error");
    if (err) err.remove();
    downloadProof(b.dataset.ticket, where);
  }));
}

function errorBox(e) {
  const policies = e.policies && e.policies.length ? ` [${e.policies.map(esc).join(", ")}]` : "";
  return `<div class="error" role="alert" id="error"><strong>${t("denied")}:</strong> ${esc(tr(e.message))}${policies}</div>`;
}

function nav() {
  const role = state.me && state.me.role;
  const links = [state.me ? ["#/signout", t("signout")] : ["#/signin", t("signin")]];
  if (["adviser", "inspector", "admin", "auditor"].includes(role)) links.push(["#/trace", t("trace")], ["#/sql", t("sql")]);
  if (["adviser", "admin"].includes(role)) links.push(["#/patterns", t("patterns")]);
  if (role === "researcher") links.push(["#/stats", t("stats")]);
  if (role === "citizen") links.push(["#/consultations", t("consultations")]);
  if (["admin", "auditor"].includes(role)) links.push(["#/chain", t("chain")]);
  const here = location.hash || "#/signin";
  $("#nav").innerHTML = links
    .map(([href, label]) => `<a href="${href}"${href === here ? ' aria-current="page"' : ""}>${esc(label)}</a>`)
    .join("");
  document.documentElement.lang = state.lang;
  document.querySelectorAll("[data-t]").forEach((el) => (el.textContent = t(el.dataset.t)));
}

function whoBox() {
  if (!state.me) return "";
  const m = state.me;
  return `<div class="who" id="who">${t("signedAs")} <strong>${esc(m.id)}</strong> — ${t("role")}: <strong>${esc(m.role)}</strong>` +
    (m.institution ? `, ${t("institution")}: ${esc(m.institution)}` : "") +
    `<br><span class="muted">${t("scope")}: ${esc(tr(m.scope))}</span></div>`;
}

function inspectorFields() {
  if (!state.me || state.me.role !== "inspector") return "";
  const options = (state.me.deliberations || [])
    .map((d) => `<option value="${esc(d.id)}"${d.id === state.deliberation ? " selected" : ""}>${esc(d.id)} — ${esc(d.title)}</option>`)
    .join("");
  return `<p id="need-case" class="muted" style="flex:1 1 100%">${t("needCase")}</p>
    <label for="deliberation">${t("deliberation")}<select id="deliberation" required><option value=""></option>${options}</select></label>
    <label for="case">${t("caseRef")}<input id="case" required value="${esc(state.caseRef)}"></label>`;
}

async function renderSignin() {
  $("#main").innerHTML = `<h1>${t("signin")}</h1>${whoBox()}
    <form id="signin-form">
      <label for="token">${t("token")}<input id="token" type="password" autocomplete="off" required size="60"></label>
      <button type="submit" id="signin">${t("signin")}</button>
    </form><div id="out"></div>`;
  $("#signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    state.token = $("#token").value.trim();
    state.redraw = null;
    try {
      state.me = await api("/v1/me");
      sessionStorage.setItem("iris.token", state.token);
      location.hash = state.me.role === "citizen" ? "#/consultations" : state.me.role === "researcher" ? "#/stats" : (["admin", "auditor", "adviser", "inspector"].includes(state.me.role) ? "#/trace" : "#/signin-done");
    } catch (e) {
      state.me = null;
      $("#out").innerHTML = errorBox(e);
    }
  });
  nav();
}

function timeline(rows) {
  const perDay = new Map();
  rows.forEach((r) => { const d = String(r.ts).slice(0, 10); perDay.set(d, (perDay.get(d) || 0) + 1); });
  const seen = [...perDay.keys()].sort();
  if (!seen.length) return "";
  // Every calendar day from the first to the last, so quiet days show as gaps.
  const days = [];
  for (let d = new Date(seen[0] + "T00:00:00Z"); days.length < 3660; d.setUTCDate(d.getUTCDate() + 1)) {
    const day = d.toISOString().slice(0, 10);
    days.push(day);
    if (day >= seen[seen.length - 1]) break;
  }
  const max = Math.max(...perDay.values());
  const w = Math.max(1, Math.min(24, Math.floor(900 / days.length)));
  const bars = days.map((d, i) => {
    const n = perDay.get(d) || 0;
    const h = Math.round((n / max) * 80);
    return n ? `<rect x="${i * w}" y="${90 - h}" width="${Math.max(1, w - 1)}" height="${h}"><title>${d}: ${n}</title></rect>` : "";
  }).join("");
  return `<figure><figcaption>${t("perDay")} (${esc(days[0])} → ${esc(days[days.length - 1])})</figcaption>
    <svg class="timeline" id="timeline" role="img" aria-label="${t("perDay")}" width="${days.length * w}" height="95" viewBox="0 0 ${days.length * w} 95">${bars}</svg></figure>`;
}

function csv(rows) {
  const q = (v) => { const s = String(v == null ? "" : v); return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; };
  return [COLUMNS.join(",")].concat(rows.map((r) => COLUMNS.map((c) => q(r[c])).join(","))).join("\n") + "\n";
}

// Previous / Next for a table of `pages` pages (ids prefixed by `id`); none when one page holds it all.
function pagerButtons(id, page, pages) {
  if (pages <= 1) return `<span id="${id}page">${t("page")} 1 / 1</span>`;
  return `<button type="button" id="${id}prev" ${page === 0 ? "disabled" : ""}>${t("prev")}</button>
    <span id="${id}page">${t("page")} ${page + 1} / ${pages}</span>
    <button type="button" id="${id}next" ${page >= pages - 1 ? "disabled" : ""}>${t("next")}</button>`;
}

// The last answer shown on a page, drawn again after the page is (when the language changes).
function remember(draw) { state.redraw = { hash: location.hash, draw }; }
function restore() { if (state.redraw && state.redraw.hash === location.hash) state.redraw.draw(); }

function renderRows() {
  const rows = state.rows.slice();
  if (state.sort) {
    rows.sort((a, b) => String(a[state.sort]).localeCompare(String(b[state.sort])) * (state.desc ? -1 : 1));
  }
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  state.page = Math.min(state.page, pages - 1);
  const shown = rows.slice(state.page * PAGE, (state.page + 1) * PAGE);
  const proofs = state.me && state.me.proofs;
  const head = COLUMNS.map((c) => `<th scope="col" tabindex="0" data-col="${c}" aria-sort="${state.sort === c ? (state.desc ? "descending" : "ascending") : "none"}">${esc(word(c))}</th>`).join("") +
    (proofs ? `<th scope="col">${t("proof")}</th>` : "");
  const body = shown.map((r) => "<tr>" + COLUMNS.map((c) => c === "ticket"
    ? `<td><a href="#" class="ticket" data-ticket="${esc(r[c])}">${esc(r[c])}</a></td>`
    : `<td>${esc(r[c])}</td>`).join("") +
    (proofs ? `<td><button class="proof" data-ticket="${esc(r.ticket)}">${t("proof")}</button></td>` : "") + "</tr>").join("");
  const blob = URL.createObjectURL(new Blob([csv(rows)], { type: "text/csv" }));
  $("#rows").innerHTML = `<table id="results"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>
    <div class="pager">${pagerButtons("", state.page, pages)}
    <a id="export" href="${blob}" download="iris-trace.csv">${t("export")}</a></div>`;
  document.querySelectorAll("th[data-col]").forEach((th) => {
    const sort = () => { state.desc = state.sort === th.dataset.col ? !state.desc : false; state.sort = th.dataset.col; renderRows(); };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
  });
  proofButtons($("#rows"), $("#rows"));
  if ($("#prev")) $("#prev").addEventListener("click", () => { state.page--; renderRows(); });
  if ($("#next")) $("#next").addEventListener("click", () => { state.page++; renderRows(); });
  document.querySelectorAll("a.ticket").forEach((a) => a.addEventListener("click", (e) => {
    e.preventDefault(); $("#by").value = "ticket"; $("#key").value = a.dataset.ticket; $("#from").value = ""; $("#to").value = ""; search();
  }));
}

async function search() {
  const by = $("#by").value, key = $("#key").value.trim();
  const params = new URLSearchParams({ [by]: key, limit: "5000" });
  if ($("#from").value) params.set("from", $("#from").value);
  if ($("#to").value) params.set("to", $("#to").value);
  if (state.me.role === "inspector") {
    state.deliberation = $("#deliberation").value; state.caseRef = $("#case").value.trim();
    sessionStorage.setItem("iris.deliberation", state.deliberation); sessionStorage.setItem("iris.case", state.caseRef);
    if (!state.deliberation || !state.caseRef) { $("#out").innerHTML = errorBox(new Error(t("needCase"))); return; }
    params.set("deliberation", state.deliberation); params.set("case", state.caseRef);
  }
  $("#out").innerHTML = "";
  try {
    const started = performance.now();
    const r = await api("/v1/trace?" + params.toString());
    state.rows = r.events || []; state.page = 0; state.sort = null;
    const ms = Math.round(performance.now() - started);
    const form = { by, key, from: $("#from").value, to: $("#to").value };
    const draw = () => {
      Object.entries(form).forEach(([k, v]) => { if ($("#" + k)) $("#" + k).value = v; });
      $("#out").innerHTML = `<p id="summary" class="ok">${r.count} ${t("events")}${r.truncated ? " (…)" : ""} — ${t("scope")}: ${esc(tr(r.scope))}
      <span class="muted">(${ms} ms)</span></p>${timeline(state.rows)}<div id="rows"></div>`;
      renderRows();
    };
    remember(draw);
    draw();
  } catch (e) {
    state.rows = [];
    // The refusal stays on the page, in the new language, when the language changes.
    const form = { by, key, from: $("#from").value, to: $("#to").value };
    const draw = () => {
      Object.entries(form).forEach(([k, v]) => { if ($("#" + k)) $("#" + k).value = v; });
      $("#out").innerHTML = errorBox(e);
    };
    remember(draw);
    draw();
  }
}

function renderTrace() {
  $("#main").innerHTML = `<h1>${t("trace")}</h1>${whoBox()}
    <form id="trace-form">
      ${inspectorFields()}
      <label for="by">${t("by")}<select id="by"><option value="subject">${t("subject")}</option><option value="actor">${t("actor")}</option><option value="ticket">${t("ticket")}</option></select></label>
      <label for="key">${t("key")}<input id="key" required></label>
      <label for="from">${t("from")}<input id="from" type="date"></label>
      <label for="to">${t("to")}<input id="to" type="date"></label>
      <button type="submit" id="search">${t("search")}</button>
    </form><div id="out"></div>`;
  $("#trace-form").addEventListener("submit", (e) => { e.preventDefault(); search(); });
  nav();
  restore();
}

async function renderConsultations() {
  $("#main").innerHTML = `<h1>${t("consultations")}</h1>${whoBox()}<div id="out"></div>`;
  nav();
  try {
    const r = await api("/v1/me/consultations");
    const rows = r.consultations || [];
    // Names a citizen understands: local time to the minute, the institution's name, what the
    // message is about, the operation in words (the codes stay beside them for a complaint).
    const cols = ["when", "institution", "message", "operation", "purpose", "ticket"];
    const cell = (row, c) => {
      if (c === "when") return esc(localTime(row.ts));
      if (c === "institution") return row.institution_name ? `${esc(row.institution_name)} <span class="muted">(${esc(row.institution)})</span>` : esc(row.institution);
      if (c === "message") { const m = row["message_" + state.lang] || row.message; return m ? `${esc(m)} <span class="muted">(${esc(row.message_type)})</span>` : esc(row.message_type); }
      if (c === "operation") return esc(word(row.operation));
      return esc(row[c]);
    };
    const proofs = state.me.proofs && rows.length;
    $("#out").innerHTML = `<p class="muted" id="rule">${esc(tr(r.rule))}</p>` + (rows.length
      ? `<table id="consultations"><thead><tr>${cols.map((c) => `<th scope="col">${esc(t("col_" + c))}</th>`).join("")}${proofs ? `<th scope="col">${t("proof")}</th>` : ""}</tr></thead><tbody>` +
        rows.map((row) => "<tr>" + cols.map((c) => `<td>${cell(row, c)}</td>`).join("") +
          (proofs ? `<td><button class="proof" data-ticket="${esc(row.ticket)}">${t("proof")}</button></td>` : "") + "</tr>").join("") + "</tbody></table>"
      : `<p id="none">${t("noConsultations")}</p>`) +
      (proofs ? `<p class="muted" id="proof-help">${esc(t("proofHelp"))}</p><div id="proof-out"></div>` : "");
    if (proofs) proofButtons($("#consultations"), $("#proof-out"));
  } catch (e) {
    $("#out").innerHTML = errorBox(e);
  }
}

async function renderChain() {
  $("#main").innerHTML = `<h1>${t("chain")}</h1>${whoBox()}
    <p><button id="verify">${t("verify")}</button> <button id="checkpoint">${t("checkpoint")}</button></p><div id="out"></div>`;
  nav();
  const show = async () => {
    try {
      const c = await api("/v1/chain");
      const v = c.last_verify;
      const verdict = !v ? `<p id="verdict">${t("lastVerify")}: ${t("never")}</p>`
        : v.ok ? `<p id="verdict" class="ok">${t("lastVerify")} (${esc(v.at)}): ${t("allHolds")} — ${esc(v.summary)}</p>`
        : `<div id="verdict" class="error" role="alert">${t("lastVerify")} (${esc(v.at)}): ${v.findings.length} ${t("findings")}<ul>${v.findings.map((f) => `<li>${esc(f)}</li>`).join("")}</ul></div>`;
      $("#out").innerHTML = `${verdict}<p id="count">${c.seals} ${t("seals")}</p>
        <table id="seals"><thead><tr><th scope="col">#</th><th scope="col">${t("kind")}</th><th scope="col">path</th><th scope="col">rows</th><th scope="col">sealed</th><th scope="col">key</th></tr></thead><tbody>` +
        c.last.map((s) => `<tr><td>${s.n}</td><td>${esc(s.kind)}</td><td>${esc(s.path)}</td><td>${s.rows}</td><td>${esc(s.sealed_at)}</td><td>${esc(s.key_id)}</td></tr>`).join("") + "</tbody></table>";
    } catch (e) {
      $("#out").innerHTML = errorBox(e);
    }
  };
  $("#verify").addEventListener("click", async () => {
    try { await api("/v1/verify", { method: "POST" }); } catch (e) { $("#out").innerHTML = errorBox(e); return; }
    show();
  });
  $("#checkpoint").addEventListener("click", async () => {
    try {
      const cp = await api("/v1/checkpoint");
      const a = document.createElement("a");
      a.id = "checkpoint-file";
      a.href = URL.createObjectURL(new Blob([JSON.stringify(cp, null, 2)], { type: "application/json" }));
      a.download = "iris-checkpoint.json";
      a.textContent = "iris-checkpoint.json";
      $("#out").prepend(a);
      a.click();
    } catch (e) { $("#out").innerHTML = errorBox(e); }
  });
  show();
}

// A table of JSON rows (objects), with ids for tests and assistive tech.
function table(id, rows, cellClass, columns) {
  const cols = columns || (rows.length ? Object.keys(rows[0]) : []);
  return `<table id="${id}"><thead><tr>${cols.map((c) => `<th scope="col">${esc(word(c))}</th>`).join("")}</tr></thead><tbody>` +
    rows.map((r) => "<tr>" + cols.map((c) => `<td${cellClass ? cellClass(r[c]) : ""}>${esc(r[c])}</td>`).join("") + "</tr>").join("") + "</tbody></table>";
}

// Horizontal bars of `value` by `label`, as SVG.
function bars(id, items, caption) {
  const shown = items.filter((i) => typeof i.value === "number").slice(0, 20);
  if (!shown.length) return "";
  const max = Math.max(...shown.map((i) => i.value)) || 1;
  const h = 18;
  const rows = shown.map((i, k) => `<text x="0" y="${k * h + 13}" font-size="12">${esc(i.label)}</text>` +
    `<rect x="170" y="${k * h + 2}" width="${Math.max(1, Math.round((i.value / max) * 500))}" height="${h - 4}"><title>${esc(i.label)}: ${i.value}</title></rect>` +
    `<text x="${175 + Math.round((i.value / max) * 500)}" y="${k * h + 13}" font-size="11">${i.value}</text>`).join("");
  return `<figure><figcaption>${esc(caption)}</figcaption><svg class="timeline" id="${id}" role="img" aria-label="${esc(caption)}" width="760" height="${shown.length * h + 4}">${rows}</svg></figure>`;
}

function renderSql() {
  $("#main").innerHTML = `<h1>${t("sql")}</h1>${whoBox()}
    <form id="sql-form">${inspectorFields()}
      <label for="sql" style="flex:1 1 100%">${t("query")}<textarea id="sql" rows="5" required>SELECT message_type, count(*) AS n FROM events GROUP BY message_type ORDER BY n DESC LIMIT 10</textarea></label>
      <button type="submit" id="run">${t("run")}</button></form><div id="out"></div>`;
  nav();
  restore();
  $("#sql-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { sql: $("#sql").value };
    if (state.me.role === "inspector") { body.deliberation = $("#deliberation").value; body.case = $("#case").value.trim(); }
    try {
      const r = await api("/v1/sql", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const sql = $("#sql").value;
      const draw = () => {
        $("#sql").value = sql;
        $("#out").innerHTML = `<p class="ok" id="summary">${r.row_count} ${t("rows")} — ${t("scope")}: ${esc(tr(r.scope))}</p>${table("answer", r.rows, null, r.columns)}`;
      };
      remember(draw);
      draw();
    } catch (err) {
      const sql = $("#sql").value;
      const draw = () => { $("#sql").value = sql; $("#out").innerHTML = errorBox(err); };
      remember(draw);
      draw();
    }
  });
}

async function renderPatterns() {
  $("#main").innerHTML = `<h1>${t("patterns")}</h1>${whoBox()}<div id="out"></div>`;
  nav();
  try {
    const list = (await api("/v1/patterns")).patterns;
    let html = "";
    for (const p of list) {
      try {
        const r = await api("/v1/sql", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ sql: p.sql }) });
        const cols = r.columns || [];
        const chart = cols.length > 1 ? bars(`chart-${p.name}`, r.rows.map((row) => ({ label: row[cols[0]], value: row[cols[1]] })), `${cols[1]} / ${cols[0]}`) : "";
        html += `<section id="pattern-${p.name}"><h2>${esc(p.title)}</h2>${chart}${table(`table-${p.name}`, r.rows, null, cols)}</section>`;
      } catch (err) { html += `<section><h2>${esc(p.title)}</h2>${errorBox(err)}</section>`; }
    }
    $("#out").innerHTML = html;
  } catch (err) { $("#out").innerHTML = errorBox(err); }
}

async function renderStats() {
  $("#main").innerHTML = `<h1>${t("stats")}</h1>${whoBox()}
    <section id="budget" class="muted"></section>
    <form id="stats-form"><label for="report">${t("report")}<select id="report"></select></label>
    <button type="submit" id="show">${t("run")}</button></form>
    <form id="ask-form"><label for="ask-sql">${t("ask")}<textarea id="ask-sql" rows="3" cols="80">SELECT region, COUNT(DISTINCT worker) AS workers, MEDIAN(wage) AS median_wage FROM declarations WHERE quarter = '2025-Q4' GROUP BY region</textarea></label>
    <button type="submit" id="ask-run">${t("run")}</button></form><div id="out"></div>`;
  nav();
  const showBudget = async () => {
    try {
      const b = (await api("/v1/research/budget")).budgets[0];
      $("#budget").innerHTML = `${t("budget")}: ρ ${b.rho_spent.toFixed(4)} / ${b.rho_total} (${t("left")} ρ ${b.rho_left.toFixed(4)}; ε ${b.epsilon_spent.toFixed(2)} at δ ${b.delta})`;
    } catch (err) { $("#budget").innerHTML = errorBox(err); }
  };
  // Long reports (hundreds of cells) are paged; the chart still shows the largest cells.
  const REPORT_PAGE = 50;
  const show = (a, page = 0) => {
    const rows = a.rows.map((r) => Object.fromEntries(a.columns.map((c, i) => [c, r[i]])));
    const pages = Math.max(1, Math.ceil(rows.length / REPORT_PAGE));
    page = Math.max(0, Math.min(page, pages - 1));
    const first = page * REPORT_PAGE;
    // Dimension columns are those a margin shows as "Total".
    const dims = a.columns.filter((c, i) => a.rows.some((r) => r[i] === "Total"));
    const measure = a.columns.find((c) => !dims.includes(c));
    const cells = rows.filter((r, i) => !a.margin[i]);
    const chart = bars("chart", cells.map((r) => ({ label: dims.map((d) => r[d]).join(" · "), value: r[measure] === ":c" ? 0 : r[measure] })), word(measure));
    const p = a.privacy;
    const noise = a.columns.map((c, i) => (p.noise[i] ? `<li>${esc(word(c))}: ${esc(p.noise[i])}</li>` : "")).join("");
    $("#out").innerHTML = `<p id="noisy"><strong>${t("noisy")}</strong></p>${chart}${table("report-table", rows.slice(first, first + REPORT_PAGE), (v) => (v === ":c" ? ' class="c" title="confidential"' : ""), a.columns)}
      <div class="pager">${pagerButtons("report-", page, pages)}</div>
      <p class="muted" id="legend">${t("confidential")}; ${t("margin")}.</p>
      <p class="muted" id="spent">${t("spent")} ρ ${p.rho_query.toFixed(4)}; ${t("left")} ρ ${p.rho_left.toFixed(4)} / ${p.rho_total}</p><ul class="muted">${noise}</ul>`;
    document.querySelectorAll("#report-table tbody tr").forEach((row, i) => { if (a.margin[first + i]) row.style.fontWeight = "bold"; });
    if ($("#report-prev")) $("#report-prev").addEventListener("click", () => show(a, page - 1));
    if ($("#report-next")) $("#report-next").addEventListener("click", () => show(a, page + 1));
    remember(() => show(a, page));
  };
  const list = (await api("/v1/reports")).reports;
  $("#report").innerHTML = list.map((r) => `<option value="${esc(r.name)}">${esc(tr(r.title))}</option>`).join("");
  restore();
  await showBudget();
  $("#stats-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      show(await api(`/v1/reports/${encodeURIComponent($("#report").value)}?format=json`));
      await showBudget();
    } catch (err) { $("#out").innerHTML = errorBox(err); }
  });
  $("#ask-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      show(await api("/v1/research/sql", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ sql: $("#ask-sql").value, format: "json" }) }));
      await showBudget();
    } catch (err) { $("#out").innerHTML = errorBox(err); }
  });
}

async function route() {
  if (state.token && !state.me) {
    try { state.me = await api("/v1/me"); } catch (e) { state.token = ""; sessionStorage.clear(); }
  }
  const here = location.hash || "#/signin";
  if (here === "#/signout") {
    state.token = ""; state.me = null; state.redraw = null; sessionStorage.clear();
    location.hash = "#/signin";
    return;
  }
  if (here !== "#/signin" && !state.me) { location.hash = "#/signin"; return; }
  if (here === "#/trace") renderTrace();
  else if (here === "#/consultations") renderConsultations();
  else if (here === "#/chain") renderChain();
  else if (here === "#/sql") renderSql();
  else if (here === "#/patterns") renderPatterns();
  else if (here === "#/stats") renderStats();
  else if (here === "#/signin-done") { $("#main").innerHTML = whoBox(); nav(); }
  else renderSignin();
  $("#main").focus();
}

$("#lang").value = state.lang;
$("#lang").addEventListener("change", () => { state.lang = $("#lang").value; localStorage.setItem("iris.lang", state.lang); route(); });
window.addEventListener("hashchange", route);
route();

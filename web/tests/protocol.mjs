// The viewer protocol's JSON Schema (docs/protocol.schema.json, made from the
// looptrace-api crate): every message, request and API reply the page exchanges
// in these tests is checked against it.

import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";

const schema = strict(JSON.parse(readFileSync(new URL("../../docs/protocol.schema.json", import.meta.url), "utf8")));

/** The schema with no room for fields it does not name: a misspelt optional
 * field fails here (viewers in the wild ignore unknown fields; these tests do
 * not). A part that another object extends in place (a tagged variant's `$ref`
 * beside the tag, a flattened enum's branches beside the outer fields) stays
 * open: the outermost object, which sees every field, is closed. */
function strict(schema) {
  const objects = [];
  const inner = new Set();
  const def = (ref) => ref && ref.startsWith("#/$defs/") && schema.$defs[ref.slice(8)];
  const markInner = (node) => {
    if (!node || typeof node !== "object" || inner.has(node)) return;
    inner.add(node);
    markInner(def(node.$ref));
    for (const k of ["oneOf", "anyOf", "allOf"]) (node[k] || []).forEach(markInner);
  };
  (function walk(node) {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== "object") return;
    if (node.properties) {
      objects.push(node);
      markInner(def(node.$ref));
      for (const k of ["oneOf", "anyOf", "allOf"]) (node[k] || []).forEach(markInner);
    }
    Object.values(node).forEach(walk);
  })(schema);
  for (const o of objects) {
    if (!inner.has(o) && !("additionalProperties" in o)) o.unevaluatedProperties = false;
  }
  return schema;
}

// Formats such as uint64 are the Rust types' names, not checks.
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: false });
ajv.addSchema(schema, "protocol");
const validator = (part) => ajv.getSchema(`protocol#/properties/${part}`);

/** The validator of one variant of a tagged union (`Message` by `type`,
 * `Request` by `op`), for errors that name the variant's own fields. */
const variants = new Map();
function variant(union, tag, value) {
  const key = `${union}:${value}`;
  if (!variants.has(key)) {
    const i = schema.$defs[union].oneOf.findIndex((b) => b.properties?.[tag]?.const === value);
    variants.set(key, i < 0 ? null : ajv.getSchema(`protocol#/$defs/${union}/oneOf/${i}`));
  }
  return variants.get(key);
}

/** How many of each message type (and request op) were checked, for coverage. */
export const seen = new Map();

function check(part, value, what, validate = validator(part)) {
  if (!validate) return `${what}: no such ${part} in the protocol schema`;
  if (validate(value)) return null;
  const e = validate.errors[0];
  return `${what} does not match the protocol schema (${part}): ${e.instancePath || "/"} ${e.message} in ${JSON.stringify(value).slice(0, 300)}`;
}

/** A message the collector sent on the viewer socket: null, or what is wrong. */
export function checkMessage(text) {
  const m = JSON.parse(text);
  seen.set(m.type, (seen.get(m.type) || 0) + 1);
  return check("message", m, `message ${m.type}`, variant("Message", "type", m.type));
}

/** A request the page sent. */
export function checkRequest(text) {
  const r = JSON.parse(text);
  seen.set(`op:${r.op}`, (seen.get(`op:${r.op}`) || 0) + 1);
  return check("request", r, `request ${r.op}`, variant("Request", "op", r.op));
}

/** The schema part an API path answers with, if it is one. */
function replyPart(path) {
  if (path === "/api/sessions") return "sessions";
  if (path === "/api/health") return "health";
  const m = path.match(/^\/api\/sessions\/\d+\/(tasks\/\d+|tasks|warnings|marks|stats|window)$/);
  if (!m) return null;
  return m[1].startsWith("tasks/") ? "task" : m[1];
}

/** An API reply the page received. */
export function checkReply(url, status, body) {
  const path = new URL(url).pathname;
  const part = status >= 400 ? "error" : replyPart(path);
  if (!part) return null;
  seen.set(`GET ${part}`, (seen.get(`GET ${part}`) || 0) + 1);
  return check(part, body, `reply of ${path}`);
}

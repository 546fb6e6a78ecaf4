/**
 * The README's code blocks as the files a new user would make by copying them. Convention: a ```ts
 * block's first line is `// <file>.ts`, an ```html block's `<!-- <file>.html -->`; blocks naming the
 * same file are joined in order. Blocks are taken verbatim, first line included.
 */

/** One fenced block: its language, text and the README line it starts on. */
export interface Block {
  lang: string
  text: string
  line: number
}

const FENCE = /^( *)```(\w*)[^\n]*\n([\s\S]*?)^\1```[ \t]*$/gm
const FILE_LINE: Record<string, RegExp> = {
  ts: /^\/\/ ([\w./-]+\.ts)\s*$/,
  html: /^<!-- ([\w./-]+\.html) -->\s*$/,
}

/** Every fenced block in `markdown`, dedented by its fence's indent. */
export function blocks(markdown: string): Block[] {
  return [...markdown.matchAll(FENCE)].map((match) => {
    const indent = match[1]!.length
    const text = match[3]!
      .split('\n')
      .map((line) => line.slice(Math.min(indent, line.length - line.trimStart().length)))
      .join('\n')
    const lang = match[2] === 'typescript' ? 'ts' : match[2]!
    return { lang, text, line: markdown.slice(0, match.index).split('\n').length }
  })
}

/**
 * The files that the README's ts and html blocks make, by name. Throws, naming the README line, when
 * a ts or html block does not start with its file name: such a block cannot be checked as a program.
 */
export function readmeFiles(markdown: string): Map<string, string> {
  const files = new Map<string, string>()
  for (const block of blocks(markdown)) {
    const pattern = FILE_LINE[block.lang]
    if (pattern === undefined) continue
    const first = block.text.split('\n', 1)[0]!
    const name = pattern.exec(first)?.[1]
    if (name === undefined) {
      const wanted = block.lang === 'ts' ? '// <file>.ts' : '<!-- <file>.html -->'
      throw new Error(`README.md:${block.line}: the \`\`\`${block.lang} block starts with ${JSON.stringify(first)}, not "${wanted}", so it cannot be checked as a file of the app`)
    }
    const before = files.get(name)
    files.set(name, before === undefined ? block.text : before + '\n' + block.text)
  }
  return files
}

/**
 * The Dockerfile read as Docker reads it, and its last stage staged without Docker: its COPY lines
 * copied from the build context (less .dockerignore) or from the stages they name, its RUN lines
 * run where this machine can stand in for the base image, and its ENV and CMD kept to start it.
 * test/integration/image.test.ts starts the result; nothing here is a second list of what the
 * image holds, so the Dockerfile and the test cannot drift.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';

export interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

export interface Stage {
  readonly name: string | undefined;
  readonly base: string;
  readonly instructions: readonly Instruction[];
}

/** Instructions grouped by stage; continuation lines joined, comments and blank lines dropped. */
export function parseDockerfile(text: string): Stage[] {
  const stages: { name: string | undefined; base: string; instructions: Instruction[] }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let logical = lines[i]!;
    if (/^\s*(#|$)/.test(logical)) continue;
    while (/\\\s*$/.test(logical) && i + 1 < lines.length) {
      i++;
      if (/^\s*#/.test(lines[i]!)) continue;
      logical = logical.replace(/\\\s*$/, ' ') + lines[i]!.trim();
    }
    const m = /^\s*([A-Za-z]+)\s+(.*?)\s*$/.exec(logical);
    if (!m) throw new Error(`Dockerfile line ${start + 1}: cannot read "${logical}"`);
    const keyword = m[1]!.toUpperCase();
    const args = m[2]!;
    if (keyword === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from) throw new Error(`Dockerfile line ${start + 1}: cannot read FROM ${args}`);
      stages.push({ base: from[1]!, name: from[2], instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile line ${start + 1}: ${keyword} before FROM`);
    stage.instructions.push({ keyword, args, line: start + 1 });
  }
  return stages;
}

/** `["a", "b"]` (exec form) or a shell command line (run with /bin/sh -c). */
export function commandOf(args: string): string[] {
  return args.startsWith('[') ? (JSON.parse(args) as string[]) : ['/bin/sh', '-c', args];
}

/** `ENV A=1 B="two words"`, or the older `ENV A value`. */
export function envOf(args: string): Record<string, string> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    const [name, ...value] = args.split(/\s+/);
    return { [name!]: value.join(' ') };
  }
  const env: Record<string, string> = {};
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    env[m[1]!] = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
  }
  return env;
}

/** A COPY line: its `--from` stage, sources and destination (other flags such as --chown are kept aside). */
export function copyOf(args: string): { from: string | undefined; sources: string[]; dest: string } {
  const words = args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift()!;
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
  }
  const dest = words.pop();
  if (dest === undefined || words.length === 0) throw new Error(`COPY ${args}: needs a source and a destination`);
  return { from, sources: words, dest };
}

/**
 * .dockerignore as Docker applies it: each pattern (a path glob, `*` within one name, `**` across
 * names) excludes what it matches and everything below; a later `!pattern` takes it back.
 */
export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const glob = posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, '')).replace(/\/+$/, '');
      const source = glob
        .split('/')
        .map((part) =>
          part === '**'
            ? '.*'
            : part
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(/\.\*\//g, '(?:.*/)?');
      return { negate, re: new RegExp(`^${source}(?:/.*)?$`) };
    });
  return (path) => {
    let excluded = false;
    for (const rule of rules) if (rule.re.test(path)) excluded = !rule.negate;
    return excluded;
  };
}

export interface StagedImage {
  /** The final stage's filesystem root (a temporary directory standing in for `/`). */
  readonly root: string;
  /** The final stage's working directory, inside `root`. */
  readonly workdir: string;
  readonly env: Readonly<Record<string, string>>;
  readonly cmd: readonly string[];
  readonly exposed: readonly string[];
  readonly healthcheck: string | undefined;
  readonly user: string | undefined;
  /** What the staging did for each RUN, in order (for the test's log). */
  readonly ran: readonly string[];
}

export interface StageOptions {
  /** The build context (the repository). */
  context: string;
  stages: readonly Stage[];
  /** A directory to stage into; each stage gets `<dir>/<index>/` as its `/`. */
  dir: string;
  /**
   * Runs one command of a RUN line in a stage's working directory, or returns false when the test
   * cannot stand in for it (the staging then fails, naming the line).
   */
  runStep(step: string, cwd: string, stage: { index: number; final: boolean }): Promise<string | false>;
}

/** Stages the last stage, and the stages its `COPY --from` lines name, in order. */
export async function stageImage(o: StageOptions): Promise<StagedImage> {
  const ignored = existsSync(join(o.context, '.dockerignore'))
    ? dockerignore(readFileSync(join(o.context, '.dockerignore'), 'utf8'))
    : () => false;
  const roots = new Map<string, string>();
  const ran: string[] = [];
  let result: StagedImage | undefined;
  for (const [index, stage] of o.stages.entries()) {
    const final = index === o.stages.length - 1;
    const root = join(o.dir, String(index));
    mkdirSync(root, { recursive: true });
    roots.set(String(index), root);
    if (stage.name) roots.set(stage.name, root);
    let workdir = '/';
    const env: Record<string, string> = {};
    let cmd: string[] = [];
    const exposed: string[] = [];
    let healthcheck: string | undefined;
    let user: string | undefined;
    const inside = (p: string): string => join(root, posix.resolve(workdir, p));
    for (const { keyword, args, line } of stage.instructions) {
      const where = `Dockerfile line ${line} (${keyword} ${args})`;
      switch (keyword) {
        case 'WORKDIR':
          workdir = posix.resolve(workdir, args);
          mkdirSync(inside('.'), { recursive: true });
          break;
        case 'ENV':
          Object.assign(env, envOf(args));
          break;
        case 'COPY': {
          const { from, sources, dest } = copyOf(args);
          const fromRoot = from === undefined ? undefined : roots.get(from);
          if (from !== undefined && fromRoot === undefined) throw new Error(`${where}: no earlier stage ${from}`);
          const intoDir = dest.endsWith('/') || sources.length > 1;
          for (const source of sources) {
            const path = fromRoot ? join(fromRoot, posix.resolve('/', source)) : join(o.context, source);
            if (!existsSync(path)) throw new Error(`${where}: ${source} does not exist`);
            if (!fromRoot && ignored(posix.normalize(source)))
              throw new Error(`${where}: .dockerignore excludes ${source}`);
            // A directory's contents go to the destination, as Docker copies them; a file goes into
            // it when it ends with / (or there are several sources), else becomes it.
            const target = statSync(path).isDirectory()
              ? inside(dest)
              : intoDir
                ? join(inside(dest), posix.basename(source))
                : inside(dest);
            mkdirSync(dirname(target), { recursive: true });
            cpSync(path, target, {
              recursive: true,
              filter: (p) => fromRoot !== undefined || !ignored(relative(o.context, p).split('\\').join('/')),
            });
          }
          break;
        }
        case 'RUN':
          for (const step of args.split('&&').map((s) => s.trim())) {
            const done = await o.runStep(step, inside('.'), { index, final });
            if (done === false) throw new Error(`${where}: the staging cannot stand in for "${step}"`);
            ran.push(`stage ${index}: ${step} -> ${done}`);
          }
          break;
        case 'CMD':
          cmd = commandOf(args);
          break;
        case 'EXPOSE':
          exposed.push(...args.split(/\s+/));
          break;
        case 'HEALTHCHECK':
          healthcheck = args;
          break;
        case 'USER':
          user = args;
          break;
        default:
          throw new Error(`${where}: the staging does not know ${keyword}; teach test/support/dockerfile.ts`);
      }
    }
    if (final) result = { root, workdir: inside('.'), env, cmd, exposed, healthcheck, user, ran };
  }
  if (!result) throw new Error('the Dockerfile has no stage');
  return result;
}

/**
 * The docs against what they describe: the role table against the policy, the Grafana section
 * against the provisioned dashboards, every relative link against the tree, and every GraphQL example
 * against the published schema. (The configuration table is checked in config.test.ts.)
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSchema, parse, validate, type DocumentNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { ROLE_PERMISSIONS, ROOT_FIELD_PERMISSIONS } from '../../src/auth/policy.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pages = [
  'README.md',
  ...readdirSync(join(root, 'docs')).flatMap((f) => (f.endsWith('.md') ? [`docs/${f}`] : [])),
  'deploy/k8s/README.md',
];
const read = (page: string): string => readFileSync(join(root, page), 'utf8');

/** A page without its fenced code blocks, where brackets and pipes are code, not markdown. */
const prose = (text: string): string => text.replace(/^```[\s\S]*?^```/gm, '');

/** The cells of each table row of a page that starts with `first` (a regular expression on the first cell). */
function rows(text: string, first: RegExp): string[][] {
  return prose(text)
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) =>
      line
        .slice(1, line.endsWith('|') ? -1 : undefined)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim()),
    )
    .filter((cells) => first.test(cells[0] ?? ''));
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const anchor = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[`*_]/g, '')
    .replace(/[^\p{L}\p{N} -]/gu, '')
    .replace(/ /g, '-');
const anchors = (text: string): Set<string> =>
  new Set([...prose(text).matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1]!)));

describe('the role table (docs/security.md)', () => {
  const table = rows(read('docs/security.md'), /^(query|mutation|subscription) `\w+`$/);
  const header = rows(read('docs/security.md'), /^operation$/)[0] ?? [];
  const roles = header.slice(1);

  it('has a column for every role', () => {
    expect([...roles].sort()).toEqual(Object.keys(ROLE_PERMISSIONS).sort());
  });

  it('gives every role exactly the operations the policy allows it', () => {
    const kinds = { query: 'Query', mutation: 'Mutation', subscription: 'Subscription' } as const;
    const documented = new Map<string, string[]>(
      table.map((cells) => {
        const [, kind, field] = /^(\w+) `(\w+)`$/.exec(cells[0]!)!;
        return [`${kinds[kind as keyof typeof kinds]}.${field}`, cells.slice(1)] as const;
      }),
    );
    expect([...documented.keys()].sort()).toEqual(Object.keys(ROOT_FIELD_PERMISSIONS).sort());
    for (const [field, permission] of Object.entries(ROOT_FIELD_PERMISSIONS)) {
      const marks = documented.get(field) ?? [];
      roles.forEach((role, i) => {
        const allowed = ROLE_PERMISSIONS[role as keyof typeof ROLE_PERMISSIONS].has(permission);
        expect(marks[i]?.startsWith('✓') ?? false, `${role} may use ${field}: ${allowed}`).toBe(allowed);
      });
    }
  });
});

describe('the Grafana section (docs/operations.md)', () => {
  interface Dashboard {
    title: string;
    panels: { title: string }[];
  }
  const folder = join(root, 'deploy/grafana/provisioning/dashboards');
  const dashboards = readdirSync(folder)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(folder, f), 'utf8')) as Dashboard);

  it('lists exactly the panels the provisioned dashboards have', () => {
    const provisioned = dashboards.flatMap((d) => d.panels.map((p) => `${d.title} / ${p.title}`)).sort();
    const documented = rows(read('docs/operations.md'), /^\*\*.+\*\*$/)
      .map(([dashboard, panel]) => `${dashboard!.replace(/\*\*/g, '')} / ${panel!.replace(/\\\|/g, '|')}`)
      .sort();
    expect(documented).toEqual(provisioned);
  });
});

describe('links in README.md, docs/ and deploy/k8s/README.md', () => {
  it('point to files that exist, and to headings that exist', () => {
    const broken: string[] = [];
    for (const page of pages) {
      for (const [, target] of prose(read(page)).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!)) continue; // http:, https:, mailto:
        const [path, hash] = target!.split('#') as [string, string | undefined];
        const file = path === '' ? join(root, page) : join(dirname(join(root, page)), decodeURI(path));
        if (!existsSync(file)) broken.push(`${page}: ${target} (no ${relative(root, file)})`);
        else if (hash !== undefined && file.endsWith('.md') && !anchors(readFileSync(file, 'utf8')).has(hash))
          broken.push(`${page}: ${target} (no heading #${hash})`);
      }
    }
    expect(broken).toEqual([]);
  });
});

describe('GraphQL examples in README.md and docs/', () => {
  const schema = buildSchema(read('schema.graphql'));
  const examples = pages.flatMap((page) =>
    [...read(page).matchAll(/^```graphql\n([\s\S]*?)^```/gm)].map((m, i) => ({
      where: `${page} #${i + 1}`,
      text: m[1]!,
    })),
  );

  it('are there to check', () => {
    expect(examples.length).toBeGreaterThan(0);
  });

  it.each(examples)('are valid against schema.graphql: $where', ({ text }) => {
    // A block may hold several anonymous operations, each as a reader would paste it alone.
    const placeholders = text.replace(/"<[^"]*>"/g, '"x"');
    for (const definition of parse(placeholders).definitions) {
      const alone: DocumentNode = { kind: 'Document' as never, definitions: [definition] };
      expect(validate(schema, alone).map((e) => e.message)).toEqual([]);
    }
  });
});

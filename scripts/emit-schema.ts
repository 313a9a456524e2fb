/** Writes the published schema to schema.graphql (run: npm run schema). */
import { writeFileSync } from 'node:fs';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { buildAppSchema } from '../src/resolvers/buildSchema.js';

const schema = await buildAppSchema();
writeFileSync(new URL('../schema.graphql', import.meta.url), `${printSchema(lexicographicSortSchema(schema))}\n`);
console.log('schema.graphql written');

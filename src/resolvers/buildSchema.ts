/** Builds the executable schema; resolvers get the services through their constructor. */
import 'reflect-metadata';
import type { GraphQLSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import { AlertResolver } from './alert.resolver.js';
import { IncidentResolver } from './incident.resolver.js';
import { ReadingResolver } from './reading.resolver.js';
import { ReadingUpdatesResolver } from './readingUpdates.resolver.js';
import { SensorResolver } from './sensor.resolver.js';
import type { Services } from './services.js';

export const resolvers = [
  SensorResolver,
  ReadingResolver,
  AlertResolver,
  IncidentResolver,
  ReadingUpdatesResolver,
] as const;

export async function buildAppSchema(services?: Services): Promise<GraphQLSchema> {
  const instances = new Map<unknown, unknown>();
  return buildSchema({
    resolvers: [...resolvers],
    validate: false,
    // Subscriptions bring their own source (`subscribe`); type-graphql still wants a PubSub declared.
    pubSub: {
      publish() {
        throw new Error('topic pub/sub is not used: alerts flow through the alert feed');
      },
      subscribe() {
        throw new Error('topic pub/sub is not used: alerts flow through the alert feed');
      },
    },
    container: {
      get(someClass: new (s: Services | undefined) => unknown) {
        let instance = instances.get(someClass);
        if (!instance) {
          instance = new someClass(services);
          instances.set(someClass, instance);
        }
        return instance;
      },
    },
  });
}

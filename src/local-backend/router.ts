/**
 * Which route a request is for, read from the contract's route templates (`ROUTES`, then
 * `LOCAL_ROUTES`, in their order): each template becomes one pattern here, so there is no
 * second table of paths to keep in step with the client's.
 */
import { LOCAL_ROUTES, ROUTES, routePieces, type RouteDefinition, type RouteName, type RouteParams } from '../contract/routes.js';

/** Every route this server answers: the protocol's by name, then its own URLs. */
export const SERVED_ROUTES = { ...ROUTES, ...LOCAL_ROUTES } as const;
export type RouteId = keyof typeof SERVED_ROUTES;
export type LocalRouteId = keyof typeof LOCAL_ROUTES;

/** The parameters of a route, by name, already URL-decoded. */
export type ParamsOf<Id extends RouteId> = RouteParams<(typeof SERVED_ROUTES)[Id]['path']>;

/** A request that found its route: one member per route, so `id` tells the parameters. */
export type RouteMatch = {
  [Id in RouteId]: {
    id: Id;
    /** The protocol route it counts as (stats, latency, faults); undefined for media and `/__local/*`. */
    counted: RouteName | undefined;
    params: ParamsOf<Id>;
  };
}[RouteId];

interface CompiledRoute {
  id: RouteId;
  method: RouteDefinition['method'];
  counted: RouteName | undefined;
  pattern: RegExp;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The pattern of a template: literals as they are, each parameter a named group. */
function compile(definition: RouteDefinition): RegExp {
  const source = routePieces(definition.path)
    .map((piece) => ('literal' in piece ? escapeRegExp(piece.literal) : `(?<${piece.param}>${definition.params?.[piece.param] ?? '[^/]+'})`))
    .join('');
  return new RegExp(`^${source}$`);
}

function countedAs(id: RouteId): RouteName | undefined {
  if (id in ROUTES) return id as RouteName;
  const local: RouteDefinition & { route?: RouteName } = LOCAL_ROUTES[id as LocalRouteId];
  return local.route;
}

const COMPILED: readonly CompiledRoute[] = (Object.keys(SERVED_ROUTES) as RouteId[]).map((id) => ({
  id,
  method: SERVED_ROUTES[id].method,
  counted: countedAs(id),
  pattern: compile(SERVED_ROUTES[id]),
}));

/**
 * The route of `method` + `pathname` (the path as sent, still URL-encoded): the first whose
 * template matches with this method; `method` when templates match only with other methods;
 * undefined when none matches, or the first match's parameters do not decode.
 */
export function matchRoute(method: string, pathname: string): RouteMatch | 'method' | undefined {
  let wrongMethod = false;
  for (const route of COMPILED) {
    const found = route.pattern.exec(pathname);
    if (!found) continue;
    if (route.method !== method) {
      wrongMethod = true;
      continue;
    }
    const params = decodedParams(found);
    return params === undefined ? undefined : ({ id: route.id, counted: route.counted, params } as RouteMatch);
  }
  return wrongMethod ? 'method' : undefined;
}

/** The parameters of `pathname` read against one route's template (any method), or undefined. */
export function matchPath<Id extends RouteId>(id: Id, pathname: string): ParamsOf<Id> | undefined {
  const found = COMPILED.find((route) => route.id === id)?.pattern.exec(pathname);
  return found ? (decodedParams(found) as ParamsOf<Id> | undefined) : undefined;
}

/** A match's parameters URL-decoded; undefined when one does not decode (a stray `%`). */
function decodedParams(found: RegExpExecArray): Record<string, string> | undefined {
  try {
    return Object.fromEntries(Object.entries(found.groups ?? {}).map(([name, value]) => [name, decodeURIComponent(value)]));
  } catch {
    return undefined;
  }
}

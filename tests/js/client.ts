// A frontend's use of the types openapi-typescript generates from /openapi.json (api.d.ts is
// written beside this file by tests/test_typescript_client.py). tsc --strict must accept it,
// and each @ts-expect-error must still be an error: the types are precise, not `any`.
import type { components, operations, paths } from "./api";

type PostPage = paths["/api/v1/posts"]["get"]["responses"][200]["content"]["application/json"];
type Post = components["schemas"]["PostPublic"];
type NewPost = paths["/api/v1/posts"]["post"]["requestBody"]["content"]["application/json"];
type Problem = components["schemas"]["Problem"];
type ListQuery = NonNullable<operations["posts-list"]["parameters"]["query"]>;

export function titles(page: PostPage): string[] {
  const total: number | null = page.total;
  return page.items.map((post: Post) => `${post.title} (${post.votes}, of ${total})`);
}

export function owner(post: Post): string | null | undefined {
  return post.owner.full_name;
}

export const draft: NewPost = { title: "Shipping our first release", published: false };
export const query: ListQuery = { limit: 20, sort: "-created_at", cursor: "opaque" };

export function describe(problem: Problem): string {
  const status: number = problem.status;
  return `${problem.type}: ${problem.detail} (${status})`;
}

// @ts-expect-error a post's title is a string
export const wrongType: NewPost = { title: 42 };
// @ts-expect-error Create schemas forbid unknown fields, and so does the type
export const unknownField: NewPost = { title: "x", owner_id: 7 };
// @ts-expect-error votes is a number
export const votes: string = ({} as Post).votes;

// Expanded relations (issue 14): optional properties with their own types.
export function firstCommenter(post: Post): string | null | undefined {
  const total: number | null | undefined = post.comments_total;
  return total ? post.comments?.[0]?.author?.full_name : undefined;
}
export const expanded: ListQuery = { expand: ["owner", "comments.author"] };
// @ts-expect-error expand takes the declared relation names only
export const unknownRelation: ListQuery = { expand: ["nope"] };

// Bulk writes and upsert (issue 16): each operation has its own request and response types.
type NewPosts = NonNullable<operations["posts-create-many"]["requestBody"]>["content"]["application/json"];
type Written = operations["posts-create-many"]["responses"][201]["content"]["application/json"];
type Changes = NonNullable<operations["posts-update-many"]["requestBody"]>["content"]["application/json"];
type Upserted = operations["tags-upsert-many"]["responses"][200]["content"]["application/json"];

export const imported: NewPosts = [{ title: "One" }, { title: "Two", published: false }];
export function tagsOf(written: Written): string[] {
  return written.items.map((item) => `${item.data.id}: ${item.etag}`);
}
export const renames: Changes = [{ id: 7, if_match: '"3.1"', title: "Renamed" }];
export function created(answer: Upserted): boolean[] {
  return answer.items.map((item) => item.created);
}
// @ts-expect-error an update item needs the id
export const noId: Changes = [{ title: "Renamed" }];

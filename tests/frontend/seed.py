"""The rows the provider tests read, made over HTTP through the live app's `/api/v1`.

Alice sees her four posts (one a draft) and Bob's published one: five. Anonymous callers see
the four published posts. Votes order them: bobPost 3, alpha 2, gamma 1, beta and aliceDraft 0.
"""

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from tests.factories import TestUser, UserFactory

# name: (owner, title, content, published), created in this order (ids ascending)
POSTS = {
    "alpha": ("alice", "Alpha release notes", "Shipping the first build.", True),
    "beta": ("alice", "Beta feedback", "What testers said about the ALPHA build.", True),
    "gamma": ("alice", "Gamma roadmap", "Plans for the next quarter.", True),
    "aliceDraft": ("alice", "Alice's unpublished draft", "Not ready yet.", False),
    "bobPost": ("bob", "Bob on databases", "PostgreSQL and SQLite.", True),
    "bobDraft": ("bob", "Bob's private draft", "alpha secrets", False),  # hidden from Alice
}
VOTES = {"alpha": ("alice", "bob"), "gamma": ("carol",), "bobPost": ("alice", "bob", "carol")}
# name: (author, post, body), created in this order
COMMENTS = {
    "c1": ("alice", "alpha", "First!"),
    "c2": ("bob", "alpha", "Congratulations"),
    "c3": ("bob", "alpha", "When is the beta?"),
    "c4": ("alice", "bobPost", "Good read"),
    "c5": ("alice", "aliceDraft", "Note to self"),
    "c6": ("bob", "bobDraft", "Bob's note"),
}
FULL_NAMES = {"alice": "Alice Author", "bob": "Bob Builder", "carol": "Carol Voter"}


@dataclass
class Seed:
    users: dict[str, TestUser]
    posts: dict[str, int] = field(default_factory=dict)
    comments: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """What the Node side is told (tokens travel in their own variables)."""
        return {
            "users": {
                name: {"id": user.id, "full_name": FULL_NAMES[name]}
                for name, user in self.users.items()
            },
            "posts": self.posts,
            "comments": self.comments,
        }


async def seed(app: FastAPI, http: AsyncClient) -> Seed:
    factory = UserFactory(app, http)
    users = {
        name: await factory.create(email=f"{name}@example.com", full_name=full_name)
        for name, full_name in FULL_NAMES.items()
    }
    made = Seed(users)
    for name, (owner, title, content, published) in POSTS.items():
        body = {"title": title, "content": content, "published": published}
        response = await http.post("/api/v1/posts", json=body, headers=users[owner].headers)
        assert response.status_code == 201, response.text
        made.posts[name] = response.json()["id"]
    for post, voters in VOTES.items():
        for voter in voters:
            url = f"/api/v1/posts/{made.posts[post]}/vote"
            response = await http.put(url, headers=users[voter].headers)
            assert response.status_code == 204, response.text
    for name, (author, post, text) in COMMENTS.items():
        body = {"body": text, "post_id": made.posts[post]}
        response = await http.post("/api/v1/comments", json=body, headers=users[author].headers)
        assert response.status_code == 201, response.text
        made.comments[name] = response.json()["id"]
    return made

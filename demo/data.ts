/** The demo's own little social network: people, follows, posts and an activity log, kept in memory. */
import { createHash, scryptSync, timingSafeEqual } from 'node:crypto'

export interface Person {
  id: string
  name: string
  bio: string
}

export interface Post {
  id: number
  author: string
  text: string
  image: { name: string; type: string; size: number; sha256: string; bytes: Uint8Array } | null
  at: number
}

export interface Activity {
  user: string
  kind: 'follow' | 'unfollow' | 'post'
  target: string
  via: 'sdk' | 'no-js'
  at: number
}

export const PEOPLE: Person[] = [
  { id: 'ada', name: 'Ada Lovelace', bio: 'Wrote the first program, for an engine not yet built.' },
  { id: 'grace', name: 'Grace Hopper', bio: 'Made computers understand words. Found an actual bug.' },
  { id: 'alan', name: 'Alan Turing', bio: 'Asked whether machines can think.' },
  { id: 'katherine', name: 'Katherine Johnson', bio: 'Checked the orbit by hand, and it was right.' },
  { id: 'edsger', name: 'Edsger Dijkstra', bio: 'Found the shortest path. Considered goto harmful.' },
]

function hashPassword(password: string, salt: string): Buffer {
  return scryptSync(password, salt, 32)
}

const USERS = new Map([['demo', { salt: 'demo-salt', hash: hashPassword('demo1234', 'demo-salt') }]])

/** Constant-time password check against the seeded account. */
export function checkPassword(username: unknown, password: unknown): string | null {
  if (typeof username !== 'string' || typeof password !== 'string' || password.length > 200) return null
  const user = USERS.get(username)
  const candidate = hashPassword(password, user?.salt ?? 'no-such-user')
  return user !== undefined && timingSafeEqual(candidate, user.hash) ? username : null
}

export function createData() {
  const follows = new Map<string, Set<string>>()
  const posts: Post[] = []
  const activity: Activity[] = []
  return {
    follows(user: string): Set<string> {
      let set = follows.get(user)
      if (set === undefined) follows.set(user, (set = new Set()))
      return set
    },
    follow(user: string, personId: string, via: Activity['via']) {
      this.follows(user).add(personId)
      activity.push({ user, kind: 'follow', target: personId, via, at: Date.now() })
    },
    unfollow(user: string, personId: string) {
      this.follows(user).delete(personId)
      activity.push({ user, kind: 'unfollow', target: personId, via: 'sdk', at: Date.now() })
    },
    addPost(user: string, text: string, file: File | null, bytes: Uint8Array | null): Post {
      const post: Post = {
        id: posts.length + 1,
        author: user,
        text,
        image: file && bytes ? { name: file.name, type: file.type, size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex'), bytes } : null,
        at: Date.now(),
      }
      posts.push(post)
      activity.push({ user, kind: 'post', target: String(post.id), via: 'sdk', at: post.at })
      return post
    },
    posts: () => posts,
    activity: () => activity,
  }
}

export type DemoData = ReturnType<typeof createData>

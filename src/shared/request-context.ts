/** Who asked and from where: carried from the API call through the workflow into every audit entry. */
export interface RequestContext {
  request_id: string;
  actor_token_id: string | null;
  actor_scope: string | null;
  source_ip: string | null;
  user_agent: string | null;
}

-- The strongest links between two different providers (self-citation and links without a
-- provider on either side left out), from provider_citations_for; most links first, ties in
-- the view's own order (citing, then cited domain).
SELECT *
FROM provider_citations_for(since := $since, until := $until, provider := $provider, topic := $topic)
WHERE NOT is_self_citation
  AND citing_provider_domain IS NOT NULL
  AND cited_provider_domain IS NOT NULL
ORDER BY links DESC, citing_provider_domain, cited_provider_domain
LIMIT $limit;

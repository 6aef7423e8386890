import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Registered on the namespace (the dev server's --search-attribute TenantId=Keyword). */
export const TENANT_ID_SEARCH_ATTRIBUTE = defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD);

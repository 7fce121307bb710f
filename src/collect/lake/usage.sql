-- credaudit: CloudTrail usage per credential and 5-minute window, aggregated by CloudTrail Lake.
-- One row per credential, window, call, source IP, region, error code and account, with how many
-- records. Records without an access key count too (for coverage).
-- The event data store and the time range are filled in by credaudit: a checked id, times of
-- its own clock.
SELECT
    userIdentity.accessKeyId AS accessKeyId,
    CASE WHEN eventSource = 'secretsmanager.amazonaws.com' AND eventName = 'GetSecretValue'
        THEN element_at(requestParameters, 'secretId') END AS secretId,
    CASE WHEN eventSource = 'secretsmanager.amazonaws.com' AND eventName = 'BatchGetSecretValue'
        THEN element_at(requestParameters, 'secretIdList') END AS secretIdList,
    CAST(floor(to_unixtime(eventTime) / 300) AS BIGINT) * 300 AS windowStart,
    eventSource,
    eventName,
    sourceIPAddress,
    awsRegion,
    errorCode,
    coalesce(nullif(recipientAccountId, ''), nullif(userIdentity.accountId, '')) AS account,
    count(*) AS calls
FROM {event_data_store}
WHERE eventTime >= '{start}' AND eventTime < '{end}'
    AND eventVersion LIKE '1.%' AND userIdentity IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
ORDER BY 1, 4, 5, 6, 7, 8, 9, 10, 2, 3

-- credaudit: the successful lifecycle calls of access keys and secrets, one row each, with only
-- the fields credaudit's lifecycle mapping reads.
-- The event data store and the time range are filled in by credaudit: a checked id, times of
-- its own clock.
SELECT
    eventTime,
    eventSource,
    eventName,
    userIdentity.arn AS userArn,
    userIdentity.invokedBy AS invokedBy,
    userIdentity.principalId AS principalId,
    userIdentity.type AS identityType,
    sourceIPAddress,
    element_at(requestParameters, 'accessKeyId') AS accessKeyId,
    element_at(requestParameters, 'status') AS status,
    element_at(requestParameters, 'name') AS name,
    element_at(requestParameters, 'secretId') AS secretId,
    element_at(requestParameters, 'versionStage') AS versionStage,
    element_at(requestParameters, 'versionStages') AS versionStages,
    element_at(requestParameters, 'moveToVersionId') AS moveToVersionId,
    json_extract_scalar(element_at(responseElements, 'accessKey'), '$.accessKeyId') AS createdAccessKeyId,
    element_at(responseElements, 'arn') AS arn,
    element_at(responseElements, 'aRN') AS aRN
FROM {event_data_store}
WHERE eventTime >= '{start}' AND eventTime < '{end}'
    AND eventVersion LIKE '1.%' AND userIdentity IS NOT NULL
    AND errorCode IS NULL
    AND (
        (eventSource = 'iam.amazonaws.com'
            AND eventName IN ('CreateAccessKey', 'UpdateAccessKey', 'DeleteAccessKey'))
        OR (eventSource = 'secretsmanager.amazonaws.com'
            AND eventName IN ('CreateSecret', 'RotateSecret', 'PutSecretValue',
                'UpdateSecretVersionStage', 'DeleteSecret'))
    )
ORDER BY eventTime, eventSource, eventName

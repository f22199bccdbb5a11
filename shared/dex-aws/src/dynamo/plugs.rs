//! Data plugs on DynamoDB: the plug item, a name item that makes names unique without regard
//! to case, and each connection as an item in its HAT's partition.

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{Codec, get_bool, get_n, get_s, n, s};
use super::keys::{self, gsi};
use super::{Commit, DynamoStore, Item, Query};
use dex::error::{DexError, DexResult};
use dex::plugs::{DataPlug, PlugConnection, PlugStore};
use dex::stats::DATA_PLUGS;
use dex::txlog::LogEvent;

impl Codec for DataPlug {
    fn to_item(&self) -> Item {
        let p = self;
        let mut item = keys::plug(&p.id);
        item.extend([
            ("plugId".to_owned(), s(&p.id)),
            ("providerId".to_owned(), s(&p.provider_id)),
            ("providerUsername".to_owned(), s(&p.provider_username)),
            ("providerCreated".to_owned(), n(p.provider_created)),
            ("name".to_owned(), s(&p.name)),
            ("description".to_owned(), s(&p.description)),
            ("url".to_owned(), s(&p.url)),
            ("illustrationUrl".to_owned(), s(&p.illustration_url)),
            ("passwordHash".to_owned(), s(&p.password_hash)),
            ("approved".to_owned(), AttributeValue::Bool(p.approved)),
            ("created".to_owned(), n(p.created)),
            ("updatedAt".to_owned(), n(p.updated_at)),
            ("version".to_owned(), n(p.version)),
        ]);
        let sort = keys::plug_sort(p.created, &p.id);
        item.extend(gsi("gsi1", keys::ALL_PLUGS, sort.clone()));
        // Sparse: only approved plugs are in the public listing's partition.
        if p.approved {
            item.extend(gsi("gsi2", keys::APPROVED_PLUGS, sort));
        }
        item
    }

    fn from_item(item: &Item) -> DexResult<Self> {
        Ok(DataPlug {
            id: get_s(item, "plugId")?,
            provider_id: get_s(item, "providerId")?,
            provider_username: get_s(item, "providerUsername")?,
            provider_created: get_n(item, "providerCreated")?,
            name: get_s(item, "name")?,
            description: get_s(item, "description")?,
            url: get_s(item, "url")?,
            illustration_url: get_s(item, "illustrationUrl")?,
            password_hash: get_s(item, "passwordHash")?,
            approved: get_bool(item, "approved"),
            created: get_n(item, "created")?,
            updated_at: get_n(item, "updatedAt")?,
            version: get_n(item, "version")?,
        })
    }
}

fn connection_from(item: &Item) -> DexResult<PlugConnection> {
    Ok(PlugConnection {
        plug_id: get_s(item, "plugId")?,
        hat: get_s(item, "hat")?,
        connected_at: get_n(item, "connectedAt")?,
        by: get_s(item, "by")?,
    })
}

impl PlugStore for DynamoStore {
    async fn insert_plug(&self, plug: &DataPlug, event: LogEvent) -> DexResult<()> {
        let mut name = keys::plug_name(&plug.name);
        name.insert("plugId".to_owned(), s(&plug.id));
        let writes = vec![self.put_new(name), self.put_new(plug.to_item())];
        match self.commit(writes, vec![event]).await? {
            Commit::Done(_) => Ok(()),
            refused if refused.refused_index() == Some(0) => Err(DexError::Conflict(format!(
                "a data plug named {:?} exists",
                plug.name
            ))),
            Commit::Refused(_) => Err(DexError::Conflict("data plug id collision".into())),
        }
    }

    async fn get_plug(&self, id: &str) -> DexResult<Option<DataPlug>> {
        self.get_item(keys::plug(id), true)
            .await?
            .as_ref()
            .map(DataPlug::from_item)
            .transpose()
    }

    async fn update_plug(
        &self,
        plug: &DataPlug,
        expected_version: u64,
        approved_delta: i64,
        event: LogEvent,
    ) -> DexResult<()> {
        let mut writes = vec![self.put_at_version(plug.to_item(), expected_version, true)];
        if approved_delta != 0 {
            writes.push(self.counter_add(DATA_PLUGS, approved_delta));
        }
        self.commit(writes, vec![event])
            .await?
            .or_conflict("the data plug changed meanwhile; read it again and retry")?;
        Ok(())
    }

    async fn list_plugs(&self, approved_only: bool) -> DexResult<Vec<DataPlug>> {
        let (index, partition) = if approved_only {
            ("gsi2", keys::APPROVED_PLUGS)
        } else {
            ("gsi1", keys::ALL_PLUGS)
        };
        let query = Query {
            index: Some(index),
            partition,
            ..Query::default()
        };
        self.query_all(&query)
            .await?
            .iter()
            .map(DataPlug::from_item)
            .collect()
    }

    async fn record_connection(
        &self,
        connection: &PlugConnection,
        event: LogEvent,
    ) -> DexResult<bool> {
        let mut item = keys::plug_connection(&connection.hat, &connection.plug_id);
        item.extend([
            ("plugId".to_owned(), s(&connection.plug_id)),
            ("hat".to_owned(), s(&connection.hat)),
            ("connectedAt".to_owned(), n(connection.connected_at)),
            ("by".to_owned(), s(&connection.by)),
        ]);
        match self.commit(vec![self.put_new(item)], vec![event]).await? {
            Commit::Done(_) => Ok(true),
            Commit::Refused(_) => Ok(false),
        }
    }

    async fn get_connection(&self, plug_id: &str, hat: &str) -> DexResult<Option<PlugConnection>> {
        self.get_item(keys::plug_connection(hat, plug_id), true)
            .await?
            .as_ref()
            .map(connection_from)
            .transpose()
    }
}

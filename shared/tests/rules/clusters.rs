//! ClusterService: certification grants the provisioner role, decertification.

use dex::accounts::{AccountStore, Actor};
use dex::hats::ClusterStore;
use dex::hats::clusters::NewCluster;
use dex::roles::Role;

use crate::support::{World, status};

fn new_cluster(domain: &str, provisioners: Vec<String>) -> NewCluster {
    NewCluster {
        domain: domain.into(),
        platform_username: "hatdex.org".into(),
        platform_password: "the platform password".into(),
        provisioners,
    }
}

#[tokio::test]
async fn certification_grants_the_role_and_stores_the_secret_in_one_logged_change() {
    let w = World::new().await;
    let p1 = w.account("p1@dex.test", &["marketplace"]).await;
    let p2 = w.account("p2@dex.test", &["provisioner:hubat.net"]).await;
    let admin = w.account("admin@dex.test", &["admin"]).await;
    let actor = Actor::Account(admin.clone());
    let ids = vec![
        p2.account_id.clone(),
        p1.account_id.clone(),
        p1.account_id.clone(),
    ];
    let cluster = w
        .clusters()
        .certify(&actor, new_cluster("hubat.net", ids))
        .await
        .unwrap();
    assert!(cluster.certified);
    assert_eq!(cluster.version, 1);
    let mut want = vec![p1.account_id.clone(), p2.account_id.clone()];
    want.sort();
    assert_eq!(cluster.provisioners, want, "sorted, deduplicated");
    assert_eq!(cluster.secret_name, "dex/clusters/hubat.net");
    let secret = w
        .secrets
        .raw("dex/clusters/hubat.net")
        .expect("secret written");
    assert!(secret.contains("the platform password") && secret.contains("hatdex.org"));
    assert_eq!(
        w.store.get_clusters(&["hubat.net".into()]).await.unwrap(),
        vec![cluster]
    );

    let role = Role::Provisioner("hubat.net".into());
    let p1_now = w.store.get_account(&p1.account_id).await.unwrap().unwrap();
    assert_eq!(p1_now.roles, vec![Role::Marketplace, role.clone()]);
    assert_eq!(p1_now.version, p1.version + 1);
    // p2 already had the role: untouched, not logged.
    assert_eq!(
        w.store.get_account(&p2.account_id).await.unwrap().unwrap(),
        p2
    );
    assert_eq!(
        w.kinds(&p1.subject()).await,
        ["account.created", "account.roles-changed"]
    );
    assert_eq!(w.kinds(&p2.subject()).await, ["account.created"]);
    let log = w.history("cluster:hubat.net").await;
    assert_eq!(log[0].kind, "cluster.certified");
    assert_eq!(log[0].actor, admin.subject().as_str());
    assert!(!log[0].details.to_string().contains("the platform password"));

    status(
        w.clusters()
            .certify(&actor, new_cluster("hubat.net", vec![]))
            .await,
        409,
    );
}

#[tokio::test]
async fn certification_refuses_bad_input_and_unknown_provisioners() {
    // Bad input is a 400; an unknown provisioner account, an unknown resource, a 404.
    let w = World::new().await;
    let bad = NewCluster {
        domain: "Not A Domain".into(),
        platform_username: " ".into(),
        platform_password: String::new(),
        provisioners: vec![],
    };
    match status(w.clusters().certify(&Actor::Operator, bad).await, 400) {
        dex::DexError::BadRequest { details, .. } => assert_eq!(details.len(), 3, "{details:?}"),
        other => panic!("{other:?}"),
    }
    status(
        w.clusters()
            .certify(
                &Actor::Operator,
                new_cluster("hubat.net", vec!["ghost".into()]),
            )
            .await,
        404,
    );
    assert!(w.store.list_clusters().await.unwrap().is_empty());
    assert!(
        w.secrets.raw("dex/clusters/hubat.net").is_none(),
        "no secret for a refusal"
    );
}

#[tokio::test]
async fn decertify_then_certify_again() {
    let w = World::new().await;
    w.cluster("hubat.net", &[]).await;
    status(
        w.clusters()
            .decertify(&Actor::Operator, "nowhere.net")
            .await,
        404,
    );
    let off = w
        .clusters()
        .decertify(&Actor::Operator, "hubat.net")
        .await
        .unwrap();
    assert!(!off.certified);
    assert_eq!(off.version, 2);
    // Again: nothing to do, nothing logged.
    assert_eq!(
        w.clusters()
            .decertify(&Actor::Operator, "hubat.net")
            .await
            .unwrap(),
        off
    );
    assert_eq!(
        w.kinds("cluster:hubat.net").await,
        ["cluster.certified", "cluster.decertified"]
    );
    let on = w
        .clusters()
        .certify(&Actor::Operator, new_cluster("hubat.net", vec![]))
        .await
        .unwrap();
    assert!(on.certified);
    assert_eq!(on.version, 3);
    assert_eq!(on.created_at, off.created_at);
    // A writer holding the old version loses.
    let mut stale = off.clone();
    stale.version = 3;
    status(
        w.store.save_cluster(&stale, Some(2), &[], vec![]).await,
        409,
    );
}

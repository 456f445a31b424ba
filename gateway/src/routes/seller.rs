//! Wire types of the seller profile, shared by `/me/seller` and `/users`.

use chrono::{DateTime, Utc};
use domain::ports::SellerProfileRecord;
use domain::seller::{
    CertificateInput, EducationInput, LanguageInput, SellerProfile, SellerProfileInput,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageBody {
    pub language: String,
    /// `basic`, `conversational`, `fluent` or `native`.
    pub level: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EducationBody {
    pub school: String,
    pub degree: String,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub year: Option<i32>,
}

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateBody {
    pub name: String,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub year: Option<i32>,
}

/// A whole seller profile.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SellerProfileBody {
    pub full_name: String,
    /// A one-line pitch shown under the name.
    pub one_liner: String,
    pub description: String,
    /// At least one.
    pub languages: Vec<LanguageBody>,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub education: Vec<EducationBody>,
    #[serde(default)]
    pub certificates: Vec<CertificateBody>,
    /// http(s) links to a portfolio or profiles elsewhere.
    #[serde(default)]
    pub links: Vec<String>,
}

/// Some fields of a seller profile; lists are replaced whole.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SellerProfilePatch {
    pub full_name: Option<String>,
    pub one_liner: Option<String>,
    pub description: Option<String>,
    pub languages: Option<Vec<LanguageBody>>,
    pub skills: Option<Vec<String>>,
    pub education: Option<Vec<EducationBody>>,
    pub certificates: Option<Vec<CertificateBody>>,
    pub links: Option<Vec<String>>,
}

fn languages(items: Vec<LanguageBody>) -> Vec<LanguageInput> {
    items
        .into_iter()
        .map(|l| LanguageInput {
            language: l.language,
            level: l.level,
        })
        .collect()
}

fn education(items: Vec<EducationBody>) -> Vec<EducationInput> {
    items
        .into_iter()
        .map(|e| EducationInput {
            school: e.school,
            degree: e.degree,
            field: e.field,
            year: e.year,
        })
        .collect()
}

fn certificates(items: Vec<CertificateBody>) -> Vec<CertificateInput> {
    items
        .into_iter()
        .map(|c| CertificateInput {
            name: c.name,
            issuer: c.issuer,
            year: c.year,
        })
        .collect()
}

impl From<SellerProfileBody> for SellerProfileInput {
    fn from(body: SellerProfileBody) -> Self {
        Self {
            full_name: body.full_name,
            one_liner: body.one_liner,
            description: body.description,
            languages: languages(body.languages),
            skills: body.skills,
            education: education(body.education),
            certificates: certificates(body.certificates),
            links: body.links,
        }
    }
}

impl SellerProfilePatch {
    /// The current profile with this patch's fields replaced, ready to validate.
    pub fn apply(self, current: &SellerProfile) -> SellerProfileInput {
        let mut input = SellerProfileInput::from(current);
        if let Some(v) = self.full_name {
            input.full_name = v;
        }
        if let Some(v) = self.one_liner {
            input.one_liner = v;
        }
        if let Some(v) = self.description {
            input.description = v;
        }
        if let Some(v) = self.languages {
            input.languages = languages(v);
        }
        if let Some(v) = self.skills {
            input.skills = v;
        }
        if let Some(v) = self.education {
            input.education = education(v);
        }
        if let Some(v) = self.certificates {
            input.certificates = certificates(v);
        }
        if let Some(v) = self.links {
            input.links = v;
        }
        input
    }
}

/// A seller profile as shown to anyone.
#[derive(Debug, Serialize, ToSchema)]
pub struct SellerProfileView {
    pub full_name: String,
    pub one_liner: String,
    pub description: String,
    pub languages: Vec<LanguageBody>,
    pub skills: Vec<String>,
    pub education: Vec<EducationBody>,
    pub certificates: Vec<CertificateBody>,
    pub links: Vec<String>,
    pub seller_since: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&SellerProfileRecord> for SellerProfileView {
    fn from(record: &SellerProfileRecord) -> Self {
        let p = &record.profile;
        Self {
            full_name: p.full_name.clone(),
            one_liner: p.one_liner.clone(),
            description: p.description.clone(),
            languages: p
                .languages
                .iter()
                .map(|l| LanguageBody {
                    language: l.language.clone(),
                    level: l.level.as_str().to_string(),
                })
                .collect(),
            skills: p.skills.clone(),
            education: p
                .education
                .iter()
                .map(|e| EducationBody {
                    school: e.school.clone(),
                    degree: e.degree.clone(),
                    field: e.field.clone(),
                    year: e.year,
                })
                .collect(),
            certificates: p
                .certificates
                .iter()
                .map(|c| CertificateBody {
                    name: c.name.clone(),
                    issuer: c.issuer.clone(),
                    year: c.year,
                })
                .collect(),
            links: p.links.clone(),
            seller_since: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

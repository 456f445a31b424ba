//! The seller profile: what a buyer fills in to start selling.

use std::collections::HashSet;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::validation::{text, FieldError, ValidationErrors};

pub const MAX_LANGUAGES: usize = 10;
pub const MAX_SKILLS: usize = 15;
pub const MAX_EDUCATION: usize = 10;
pub const MAX_CERTIFICATES: usize = 10;
pub const MAX_LINKS: usize = 5;
pub const MIN_YEAR: i32 = 1900;
pub const MAX_YEAR: i32 = 2100;

/// How well a seller speaks a language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LanguageLevel {
    Basic,
    Conversational,
    Fluent,
    Native,
}

impl LanguageLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Conversational => "conversational",
            Self::Fluent => "fluent",
            Self::Native => "native",
        }
    }
}

impl FromStr for LanguageLevel {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "basic" => Ok(Self::Basic),
            "conversational" => Ok(Self::Conversational),
            "fluent" => Ok(Self::Fluent),
            "native" => Ok(Self::Native),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Language {
    pub language: String,
    pub level: LanguageLevel,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Education {
    pub school: String,
    pub degree: String,
    pub field: Option<String>,
    pub year: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub name: String,
    pub issuer: Option<String>,
    pub year: Option<i32>,
}

/// A valid seller profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SellerProfile {
    pub full_name: String,
    pub one_liner: String,
    pub description: String,
    pub languages: Vec<Language>,
    pub skills: Vec<String>,
    pub education: Vec<Education>,
    pub certificates: Vec<Certificate>,
    pub links: Vec<String>,
}

/// A seller profile as entered, before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SellerProfileInput {
    pub full_name: String,
    pub one_liner: String,
    pub description: String,
    pub languages: Vec<LanguageInput>,
    pub skills: Vec<String>,
    pub education: Vec<EducationInput>,
    pub certificates: Vec<CertificateInput>,
    pub links: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LanguageInput {
    pub language: String,
    pub level: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EducationInput {
    pub school: String,
    pub degree: String,
    pub field: Option<String>,
    pub year: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateInput {
    pub name: String,
    pub issuer: Option<String>,
    pub year: Option<i32>,
}

impl From<&SellerProfile> for SellerProfileInput {
    fn from(profile: &SellerProfile) -> Self {
        Self {
            full_name: profile.full_name.clone(),
            one_liner: profile.one_liner.clone(),
            description: profile.description.clone(),
            languages: profile
                .languages
                .iter()
                .map(|l| LanguageInput {
                    language: l.language.clone(),
                    level: l.level.as_str().to_string(),
                })
                .collect(),
            skills: profile.skills.clone(),
            education: profile
                .education
                .iter()
                .map(|e| EducationInput {
                    school: e.school.clone(),
                    degree: e.degree.clone(),
                    field: e.field.clone(),
                    year: e.year,
                })
                .collect(),
            certificates: profile
                .certificates
                .iter()
                .map(|c| CertificateInput {
                    name: c.name.clone(),
                    issuer: c.issuer.clone(),
                    year: c.year,
                })
                .collect(),
            links: profile.links.clone(),
        }
    }
}

fn at_most<T>(errors: &mut ValidationErrors, field: &str, items: &[T], max: usize) {
    if items.len() > max {
        errors.push(FieldError::new(
            field,
            "too_many",
            format!("must have at most {max} entries"),
        ));
    }
}

fn year(field: String, value: Option<i32>) -> Result<Option<i32>, FieldError> {
    match value {
        Some(y) if !(MIN_YEAR..=MAX_YEAR).contains(&y) => Err(FieldError::new(
            field,
            "out_of_range",
            format!("must be between {MIN_YEAR} and {MAX_YEAR}"),
        )),
        other => Ok(other),
    }
}

fn optional_text(
    field: String,
    value: &Option<String>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match value {
        None => Ok(None),
        Some(raw) => text(&field, raw, 0, max).map(|v| (!v.is_empty()).then_some(v)),
    }
}

fn link(field: String, raw: &str) -> Result<String, FieldError> {
    let value = text(&field, raw, 1, 300)?;
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    match host {
        Some(host)
            if host.contains('.')
                && !host.starts_with('.')
                && !host.contains('@')
                && !value.chars().any(char::is_whitespace) =>
        {
            Ok(value)
        }
        _ => Err(FieldError::new(
            field,
            "invalid",
            "must be an http:// or https:// address",
        )),
    }
}

impl SellerProfileInput {
    /// Checks every field and returns the profile, or every problem found.
    pub fn validate(&self) -> Result<SellerProfile, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let full_name = errors.check(text("full_name", &self.full_name, 1, 80));
        let one_liner = errors.check(text("one_liner", &self.one_liner, 1, 100));
        let description = errors.check(text("description", &self.description, 1, 1200));

        if self.languages.is_empty() {
            errors.push(FieldError::new(
                "languages",
                "required",
                "must list at least one language",
            ));
        }
        at_most(&mut errors, "languages", &self.languages, MAX_LANGUAGES);
        let mut seen = HashSet::new();
        let mut languages = Vec::new();
        for (i, input) in self.languages.iter().enumerate() {
            let name = errors.check(text(
                &format!("languages[{i}].language"),
                &input.language,
                1,
                40,
            ));
            let level = errors.check(input.level.parse::<LanguageLevel>().map_err(|()| {
                FieldError::new(
                    format!("languages[{i}].level"),
                    "invalid",
                    "must be one of basic, conversational, fluent, native",
                )
            }));
            if let Some(name) = &name {
                if !seen.insert(name.to_lowercase()) {
                    errors.push(FieldError::new(
                        format!("languages[{i}].language"),
                        "duplicate",
                        "is listed twice",
                    ));
                }
            }
            if let (Some(language), Some(level)) = (name, level) {
                languages.push(Language { language, level });
            }
        }

        at_most(&mut errors, "skills", &self.skills, MAX_SKILLS);
        let mut seen = HashSet::new();
        let mut skills = Vec::new();
        for (i, raw) in self.skills.iter().enumerate() {
            if let Some(skill) = errors.check(text(&format!("skills[{i}]"), raw, 1, 40)) {
                if seen.insert(skill.to_lowercase()) {
                    skills.push(skill);
                } else {
                    errors.push(FieldError::new(
                        format!("skills[{i}]"),
                        "duplicate",
                        "is listed twice",
                    ));
                }
            }
        }

        at_most(&mut errors, "education", &self.education, MAX_EDUCATION);
        let mut education = Vec::new();
        for (i, input) in self.education.iter().enumerate() {
            let school = errors.check(text(
                &format!("education[{i}].school"),
                &input.school,
                1,
                120,
            ));
            let degree = errors.check(text(
                &format!("education[{i}].degree"),
                &input.degree,
                1,
                120,
            ));
            let field = errors.check(optional_text(
                format!("education[{i}].field"),
                &input.field,
                120,
            ));
            let year = errors.check(year(format!("education[{i}].year"), input.year));
            if let (Some(school), Some(degree), Some(field), Some(year)) =
                (school, degree, field, year)
            {
                education.push(Education {
                    school,
                    degree,
                    field,
                    year,
                });
            }
        }

        at_most(
            &mut errors,
            "certificates",
            &self.certificates,
            MAX_CERTIFICATES,
        );
        let mut certificates = Vec::new();
        for (i, input) in self.certificates.iter().enumerate() {
            let name = errors.check(text(
                &format!("certificates[{i}].name"),
                &input.name,
                1,
                120,
            ));
            let issuer = errors.check(optional_text(
                format!("certificates[{i}].issuer"),
                &input.issuer,
                120,
            ));
            let year = errors.check(year(format!("certificates[{i}].year"), input.year));
            if let (Some(name), Some(issuer), Some(year)) = (name, issuer, year) {
                certificates.push(Certificate { name, issuer, year });
            }
        }

        at_most(&mut errors, "links", &self.links, MAX_LINKS);
        let links: Vec<String> = self
            .links
            .iter()
            .enumerate()
            .filter_map(|(i, raw)| errors.check(link(format!("links[{i}]"), raw)))
            .collect();

        errors.finish(|| {
            Some(SellerProfile {
                full_name: full_name?,
                one_liner: one_liner?,
                description: description?,
                languages,
                skills,
                education,
                certificates,
                links,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SellerProfileInput {
        SellerProfileInput {
            full_name: "Ada Lovelace".into(),
            one_liner: "Analytical engines, programmed".into(),
            description: "I write programs for machines that do not exist yet.".into(),
            languages: vec![LanguageInput {
                language: "English".into(),
                level: "native".into(),
            }],
            skills: vec!["rust".into(), "math".into()],
            education: vec![],
            certificates: vec![],
            links: vec!["https://example.com/ada".into()],
        }
    }

    #[test]
    fn a_complete_profile_validates_and_round_trips() {
        let profile = input().validate().unwrap();
        assert_eq!(
            SellerProfileInput::from(&profile).validate().unwrap(),
            profile
        );
    }

    #[test]
    fn every_bad_field_is_reported() {
        let mut bad = input();
        bad.full_name = " ".into();
        bad.languages = vec![LanguageInput {
            language: "English".into(),
            level: "pro".into(),
        }];
        bad.skills = vec!["rust".into(), "Rust".into()];
        bad.links = vec!["javascript:alert(1)".into()];
        bad.education = vec![EducationInput {
            school: "MIT".into(),
            degree: "BSc".into(),
            field: None,
            year: Some(1066),
        }];
        let errors = bad.validate().unwrap_err();
        let fields: Vec<_> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "full_name",
                "languages[0].level",
                "skills[1]",
                "education[0].year",
                "links[0]"
            ]
        );
    }

    #[test]
    fn at_least_one_language_is_required() {
        let mut bad = input();
        bad.languages.clear();
        assert_eq!(bad.validate().unwrap_err().errors()[0].code, "required");
    }
}
